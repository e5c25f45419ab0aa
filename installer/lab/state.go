package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// state is everything a lab made, saved after every step of Up so Down can
// undo a half-made lab as well as a whole one.
type state struct {
	Name       string         `json:"name"`
	Subnet     string         `json:"subnet"`
	Bridge     string         `json:"bridge"`
	Gateway    string         `json:"gateway"`
	VIP        string         `json:"vip"`
	Image      string         `json:"image"`
	CgroupMode string         `json:"cgroupMode"`
	Machines   []machineState `json:"machines"`
}

type machineState struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Index    int    `json:"index"`
	Address  string `json:"address"`
	Netns    string `json:"netns"`
	HostVeth string `json:"hostVeth"`
	// RootMode is overlay (upper/work over the image) or copy (cp -a fallback).
	RootMode string `json:"rootMode"`
	// PID is the systemd-nspawn process; only recorded PIDs are ever signalled.
	PID int `json:"pid"`
	// Cgroups are the per-machine cgroup directories made for the launch, one
	// per hierarchy, removed deepest first by Down.
	Cgroups []string `json:"cgroups,omitempty"`
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

// loadState returns nil, nil when the lab has no state file.
func loadState(dir string) (*state, error) {
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lab state: %w", err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse lab state %s: %w", statePath(dir), err)
	}
	return &s, nil
}

func saveState(dir string, s *state) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(statePath(dir), append(b, '\n'), 0o600)
}

func (s *state) machine(name string) *machineState {
	for i := range s.Machines {
		if s.Machines[i].Name == name {
			return &s.Machines[i]
		}
	}
	return nil
}

// writeFileAtomic writes via a temp file and rename so readers never see a
// half-written state, inventory or known_hosts.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
