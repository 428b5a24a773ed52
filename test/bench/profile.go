package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"time"
)

// profileSelf starts a CPU profile of this process (the load generator)
// into path and returns the function that stops it; on error it says so
// on stderr and returns a no-op.
func profileSelf(path string, stderr io.Writer) (stop func()) {
	f, err := os.Create(path)
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "profile of the load generator: %v\n", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// fetchProfile writes a CPU profile of d (whole seconds, at least 1) from
// the pprof server at addr to path.
func fetchProfile(ctx context.Context, addr string, d time.Duration, path string) error {
	secs := max(1, int(d/time.Second))
	return fetchPprof(ctx, addr, fmt.Sprintf("profile?seconds=%d", secs), path)
}

// fetchPprof writes /debug/pprof/NAME of the pprof server at addr to path
// (a CPU profile of ?seconds=N, or a named profile such as heap).
func fetchPprof(ctx context.Context, addr, name, path string) error {
	c := &http.Client{Timeout: 2 * time.Minute}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/"+name, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
