package wxemu

import "time"

// sweepLocked drops expired records once the maps have grown; e.mu held.
func (e *Emulator) sweepLocked(now time.Time) {
	size := len(e.codes) + len(e.webTokens) + len(e.refreshes) + len(e.tokens) + len(e.tickets) + len(e.qrs)
	if size < e.sweepAt {
		return
	}
	for k, c := range e.codes {
		if now.Sub(c.issued) > codeTTL {
			delete(e.codes, k)
		}
	}
	for k, t := range e.webTokens {
		if now.Sub(t.expires) > expiredKept {
			delete(e.webTokens, k)
		}
	}
	for k, g := range e.refreshes {
		if now.Sub(g.issued) > refreshTTL {
			delete(e.refreshes, k)
		}
	}
	for k, t := range e.tokens {
		if now.Sub(t.expires) > expiredKept && k != e.current && k != e.stable {
			delete(e.tokens, k)
		}
	}
	for k, exp := range e.tickets {
		if !now.Before(exp) {
			delete(e.tickets, k)
		}
	}
	for k, q := range e.qrs {
		if !q.permanent && !now.Before(q.expires) {
			delete(e.qrs, k)
		}
	}
	trim(e.codes, maxRecords)
	trim(e.webTokens, maxRecords)
	trim(e.refreshes, maxRecords)
	for id, rt := range e.userRefresh {
		if e.refreshes[rt] == nil {
			delete(e.userRefresh, id)
		}
	}
	size = len(e.codes) + len(e.webTokens) + len(e.refreshes) + len(e.tokens) + len(e.tickets) + len(e.qrs)
	e.sweepAt = max(sweepMin, 2*size)
}

// trim forgets arbitrary records of m down to 3/4 of limit once it holds
// more than limit, so that a long load test cannot grow the emulator without
// bound. A forgotten code or token then answers 40029 or 40001.
func trim[V any](m map[string]V, limit int) {
	if len(m) <= limit {
		return
	}
	for k := range m {
		if len(m) <= limit*3/4 {
			return
		}
		delete(m, k)
	}
}
