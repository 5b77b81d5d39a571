package main

import "github.com/mxgate/mxgate/node"

// orphanGrace bounds how long a stopping node waits for the sessions on a
// VIP it released; the end-to-end tests allow for it.
const orphanGrace = node.OrphanGrace
