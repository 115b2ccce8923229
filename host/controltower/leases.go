package controltower

import (
	"context"
	"time"

	"github.com/routinglayer/routing/host/pluginmgr"
	"github.com/routinglayer/routing/host/store"
)

// watcherLeases are the store's watcher leases as instance sees them:
// with PostgreSQL, control-towers sharing the database run each watcher
// in one of them at a time.
type watcherLeases struct {
	st       *store.Store
	instance string
}

var _ pluginmgr.Leases = watcherLeases{}

func (l watcherLeases) Acquire(ctx context.Context, name string, ttl time.Duration) (pluginmgr.Lease, error) {
	sl, held, err := l.st.LeaseAcquire(ctx, name, l.instance, ttl)
	if err != nil {
		return pluginmgr.Lease{}, err
	}
	return pluginmgr.Lease{Held: held, Holder: sl.Holder, Stopped: sl.Stopped, Restarts: sl.Restarts, Starts: sl.Starts}, nil
}

func (l watcherLeases) Release(ctx context.Context, name string) error {
	return l.st.LeaseRelease(ctx, name, l.instance)
}

func (l watcherLeases) Stop(ctx context.Context, name string) error {
	return l.st.LeaseStop(ctx, name)
}

func (l watcherLeases) Start(ctx context.Context, name string) error {
	return l.st.LeaseStart(ctx, name)
}

func (l watcherLeases) Restart(ctx context.Context, name string) error {
	return l.st.LeaseRestart(ctx, name)
}
