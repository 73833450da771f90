package crypt

// Zero overwrites b with zeros. Call it on every buffer that held key
// material or clear secrets once the value is no longer needed.
func Zero(b []byte) {
	clear(b)
}
