package lvs

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Kernel is the kernel's IPVS table as the director needs it. OpenIPVS
// is the real one (moby/ipvs over generic netlink); lvstest.Kernel is an
// in-memory one for tests. Services are named by Key; a call on a
// missing service or real server is an error.
type Kernel interface {
	// Table lists every service with its real servers.
	Table() ([]Virtual, error)
	AddService(v Virtual) error // without its real servers
	UpdateService(v Virtual) error
	DelService(k Key) error
	AddDest(k Key, d Dest) error
	UpdateDest(k Key, d Dest) error
	DelDest(k Key, d Dest) error
}

// apply performs ops in order; it goes on after a failure and returns
// every error, and the keys of the services it deleted.
func apply(k Kernel, ops []Op) (deleted []Key, err error) {
	var errs []error
	for _, op := range ops {
		key := op.Service.Key
		var e error
		switch op.Kind {
		case AddService:
			e = k.AddService(op.Service)
		case UpdateService:
			e = k.UpdateService(op.Service)
		case AddDest:
			e = k.AddDest(key, op.Dest)
		case UpdateDest:
			e = k.UpdateDest(key, op.Dest)
		case DelDest:
			e = k.DelDest(key, op.Dest)
		case DelService:
			if e = k.DelService(key); e == nil {
				deleted = append(deleted, key)
			}
		}
		if e != nil {
			errs = append(errs, fmt.Errorf("%s: %w", op, e))
		}
	}
	return deleted, errors.Join(errs...)
}

// stateFile records the services this node may have created, so that a
// later run removes those it no longer wants even after the configuration
// dropped them. It is written before a service is added (a crash between
// the two leaves a record, never an unrecorded service) and after
// services are deleted.
type stateFile struct {
	path string // "" = no record: only configured services are managed
	keys map[Key]bool
}

func loadState(path string) (*stateFile, error) {
	s := &stateFile{path: path, keys: map[Key]bool{}}
	if path == "" {
		return s, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lvs: state: %w", err)
	}
	var keys []Key
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, fmt.Errorf("lvs: state %s: %w", path, err)
	}
	for _, k := range keys {
		s.keys[k] = true
	}
	return s, nil
}

// set records exactly keys, if they differ from what is recorded.
func (s *stateFile) set(keys map[Key]bool) error {
	if len(keys) == len(s.keys) {
		same := true
		for k := range keys {
			same = same && s.keys[k]
		}
		if same {
			return nil
		}
	}
	s.keys = keys
	if s.path == "" {
		return nil
	}
	list := make([]Key, 0, len(keys))
	for k := range keys {
		list = append(list, k)
	}
	slices.SortFunc(list, func(a, b Key) int { return cmp.Compare(a.String(), b.String()) })
	b, _ := json.Marshal(list)
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return fmt.Errorf("lvs: state: %w", err)
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("lvs: state: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("lvs: state: %w", err)
	}
	return nil
}
