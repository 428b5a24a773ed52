package sqlite

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/wxauth/wxauth/internal/store"
)

// Defaults of [DB.Batched].
const (
	// DefaultBatchInterval is how long a Put may wait before it is written
	// (and what a SIGKILL may lose).
	DefaultBatchInterval = 10 * time.Millisecond
	// DefaultBatchMax is how many Puts may wait; past it, Put writes at
	// once.
	DefaultBatchMax = 4096
	// batchKick is the number of waiting Puts that starts a write before
	// the interval is over.
	batchKick = 512
)

// pendingRecord is a Put waiting to be written: its value and expiry in
// Unix nanoseconds.
type pendingRecord struct {
	val []byte
	exp int64
}

// BatchedRecords is the DB's [store.Records] with Put written in groups:
// a Put is kept in memory and written, with every other Put of the last
// interval, in one transaction (one WAL commit for many records instead of
// one each). Every other operation sees it at once: Get answers a waiting
// Put from memory, and PutIfAbsent, Take and Delete first write any waiting
// Put of their key, so the contract of store.Records holds. What a crash
// (SIGKILL) can lose is the Puts of the last interval; Close writes them.
// At most max Puts wait: past that, Put writes at once.
type BatchedRecords struct {
	d        *DB
	interval time.Duration
	max      int

	mu       sync.Mutex
	pending  map[string]pendingRecord // not yet handed to a write
	inflight map[string]pendingRecord // being written
	flushMu  sync.Mutex               // held while a group is written

	kick      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var _ store.Records = (*BatchedRecords)(nil)

// Batched returns the DB's records with grouped Puts, and starts the writer
// (stopped by [BatchedRecords.Close], before the DB's own Close). interval
// <= 0 means DefaultBatchInterval, max <= 0 DefaultBatchMax.
func (d *DB) Batched(interval time.Duration, max int) *BatchedRecords {
	if interval <= 0 {
		interval = DefaultBatchInterval
	}
	if max <= 0 {
		max = DefaultBatchMax
	}
	b := &BatchedRecords{d: d, interval: interval, max: max, pending: map[string]pendingRecord{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

// Close writes the waiting Puts and stops the writer. Calling it again
// returns the first result. Errors: the driver's, wrapped with "sqlite:
// write records".
func (b *BatchedRecords) Close() error {
	b.closeOnce.Do(func() {
		close(b.stop)
		<-b.done
		b.closeErr = b.flush(context.Background())
	})
	return b.closeErr
}

func (b *BatchedRecords) run() {
	defer close(b.done)
	t := time.NewTicker(b.interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		case <-b.kick:
		}
		ctx, cancel := context.WithTimeout(context.Background(), busyTimeout)
		_ = b.flush(ctx) // failed writes wait for the next turn
		cancel()
	}
}

// flush writes every waiting Put in one transaction; on failure they wait
// again (unless a newer Put of the same key came meanwhile).
func (b *BatchedRecords) flush(ctx context.Context) error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	if len(b.pending) == 0 {
		b.mu.Unlock()
		return nil
	}
	b.inflight, b.pending = b.pending, make(map[string]pendingRecord, len(b.pending))
	batch := b.inflight
	b.mu.Unlock()
	err := b.d.inTx(ctx, func(tx *stmtTx) error {
		for k, r := range batch {
			if _, err := tx.ExecContext(ctx, upsertRecord, k, nonNilBytes(r.val), r.exp); err != nil {
				return err
			}
		}
		return nil
	})
	b.mu.Lock()
	if err != nil {
		for k, r := range batch {
			if _, newer := b.pending[k]; !newer {
				b.pending[k] = r
			}
		}
	}
	b.inflight = nil
	b.mu.Unlock()
	if err != nil {
		return fmt.Errorf("sqlite: write records: %w", err)
	}
	return nil
}

// settle writes the waiting Put of key, if any, and waits for a group
// holding it to be written, so that an operation on the database after it
// sees key as the last Put left it.
func (b *BatchedRecords) settle(ctx context.Context, key string) error {
	b.mu.Lock()
	_, p := b.pending[key]
	_, f := b.inflight[key]
	b.mu.Unlock()
	if !p && !f {
		return nil
	}
	b.flushMu.Lock() // the group being written, if any, is committed
	defer b.flushMu.Unlock()
	b.mu.Lock()
	r, ok := b.pending[key]
	delete(b.pending, key)
	b.mu.Unlock()
	if !ok {
		return nil
	}
	if _, err := b.d.wstmts.ExecContext(ctx, upsertRecord, key, nonNilBytes(r.val), r.exp); err != nil {
		return fmt.Errorf("sqlite: put record: %w", err)
	}
	return nil
}

// Put keeps val under key for ttl, written with the next group; with max
// Puts already waiting it writes at once. Errors: ttl <= 0; the driver's
// when written at once.
func (b *BatchedRecords) Put(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	r := pendingRecord{val: append([]byte{}, val...), exp: b.d.now().Add(ttl).UnixNano()}
	b.mu.Lock()
	_, waiting := b.pending[key]
	if waiting || len(b.pending) < b.max {
		b.pending[key] = r
		n := len(b.pending)
		b.mu.Unlock()
		if n >= batchKick {
			select {
			case b.kick <- struct{}{}:
			default:
			}
		}
		return nil
	}
	b.mu.Unlock()
	if err := b.settle(ctx, key); err != nil {
		return err
	}
	return b.d.Put(ctx, key, val, ttl)
}

// Get returns the live value of key: a waiting Put's from memory, else the
// database's. Errors: as [DB.Get].
func (b *BatchedRecords) Get(ctx context.Context, key string) ([]byte, error) {
	b.mu.Lock()
	r, ok := b.pending[key]
	if !ok {
		r, ok = b.inflight[key]
	}
	b.mu.Unlock()
	if ok {
		if r.exp <= b.d.now().UnixNano() {
			return nil, fmt.Errorf("sqlite: get record: %w", store.ErrNotFound)
		}
		return append([]byte{}, r.val...), nil
	}
	return b.d.Get(ctx, key)
}

// PutIfAbsent is [DB.PutIfAbsent] after any waiting Put of key is written.
func (b *BatchedRecords) PutIfAbsent(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := b.settle(ctx, key); err != nil {
		return false, err
	}
	return b.d.PutIfAbsent(ctx, key, val, ttl)
}

// Take is [DB.Take] after any waiting Put of key is written.
func (b *BatchedRecords) Take(ctx context.Context, key string) ([]byte, error) {
	if err := b.settle(ctx, key); err != nil {
		return nil, err
	}
	return b.d.Take(ctx, key)
}

// Delete is [DB.Delete] after any waiting Put of key is written.
func (b *BatchedRecords) Delete(ctx context.Context, key string) error {
	if err := b.settle(ctx, key); err != nil {
		return err
	}
	return b.d.Delete(ctx, key)
}
