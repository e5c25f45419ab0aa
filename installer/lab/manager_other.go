//go:build !linux

package lab

import (
	"context"
	"errors"
	"runtime"
)

var errNotLinux = errors.New("kubewright lab needs Linux (network namespaces, cgroups and systemd-nspawn); this is " + runtime.GOOS + ": use the Vagrant topology in vagrant/ instead")

// Up fails: labs need Linux.
func (m *Manager) Up(ctx context.Context, o UpOptions) (*Lab, error) { return nil, errNotLinux }

// Down fails: labs need Linux.
func (m *Manager) Down(ctx context.Context, name string) (bool, error) { return false, errNotLinux }

// Status fails: labs need Linux.
func (m *Manager) Status(ctx context.Context, name string) (*Lab, error) { return nil, errNotLinux }

// SSHArgs fails: labs need Linux.
func (m *Manager) SSHArgs(name, machine string, command []string) ([]string, error) {
	return nil, errNotLinux
}

// Leftovers is empty: nothing of a lab can exist here.
func (m *Manager) Leftovers(name string) []string { return nil }
