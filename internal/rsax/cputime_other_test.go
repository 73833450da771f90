//go:build !unix

package rsax

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
