package config

// Cluster modes: cluster.mode in the node file and mode in the cluster-wide
// settings (clusterconf) take one of these; the membership acts on them.
const (
	ModeActiveActive  = "active-active"  // every live member scans by weight
	ModeActivePassive = "active-passive" // the master scans alone
)
