//go:build !benchprofile

package main

import (
	"context"
	"errors"
	"time"
)

// profileKubewright needs the engine in this process: see profile.go.
func (w *workspace) profileKubewright(context.Context, int, string) ([2]time.Duration, error) {
	return [2]time.Duration{}, errors.New("-cpuprofile needs a build with -tags benchprofile (go run -tags benchprofile ./test/bench ...)")
}
