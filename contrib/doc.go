// Package contrib holds no code: its tests keep the files beside it
// honest. The example node files pass `mxgate serve --check`, the systemd
// unit passes `systemd-analyze verify`, `make install` puts everything
// where it belongs, and the docker-compose lab at the top of the
// repository is valid for Debian's docker-compose 1.29.2 and has the
// topology the README describes.
package contrib
