// Package enginebench holds the engine benchmark of make bench
// (TestEngineBench): clamd, Rspamd and spamd called directly, by their own
// command-line clients and by mxgate's clients in-process, against the
// same engines behind a real mxgate node, on the same 10 KB messages.
// It has no code of its own outside the test; see bench/README.md.
package enginebench
