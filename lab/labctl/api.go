package labctl

// StatusSocket is the unix socket of a node's status API (GET /status,
// GET /metrics).
func (l *Lab) StatusSocket(node string) string { return l.sock(node) }
