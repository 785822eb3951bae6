package drbd_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/storage/drbd"
	"github.com/leasehold/leasehold/storage/drbd/drbdtest"
)

func TestWatcherReportsChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := drbdtest.NewHost("r0", 0)
		w := drbd.NewWatcher(h, drbd.DefaultPaths().ProcDRBD, 0, 0)
		if _, err := w.Current(); err == nil {
			t.Fatal("a state before the first read")
		}
		var mu sync.Mutex
		var seen []string
		w.OnChange = func(s drbd.State, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				seen = append(seen, "err")
				return
			}
			seen = append(seen, string(s.Role)+" "+string(s.Disk))
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { w.Run(ctx); close(done) }()
		synctest.Wait()
		// Changes land between polls (every 200 ms from 0): five polls
		// without a change, then one change per poll.
		time.Sleep(time.Second + drbd.DefaultWatchInterval/2)
		h.Set(drbd.Primary, drbd.UpToDate, drbd.WFConnection)
		time.Sleep(drbd.DefaultWatchInterval)
		h.Unconfigure()
		time.Sleep(drbd.DefaultWatchInterval)
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if want := []string{"Secondary UpToDate", "Primary UpToDate", "err"}; len(seen) != 3 || seen[0] != want[0] || seen[1] != want[1] || seen[2] != want[2] {
			t.Fatalf("changes %v, want %v", seen, want)
		}
		if s, err := w.Current(); !errors.Is(err, drbd.ErrNoMinor) || s.Configured() {
			t.Fatalf("current %v %v", s, err)
		}
	})
}
