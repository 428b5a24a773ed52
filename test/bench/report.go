package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Goals of issue 17 that are not a ratio to the ceiling.
const (
	loginGoal    = 1500                  // full logins per second, at least
	loginP99Goal = 25 * time.Millisecond // p99 of a full login, at most
	p99Goal      = 1.5                   // p99 of a ratio target over hello's p99 in the same round, at most
	rssGoal      = 64 << 20              // peak RSS at -rss-c concurrency, in bytes, at most
	maxErrorRate = 0.01                  // failed operations a target may have and still pass
)

// report prints the table (Markdown, ready for the README) and the CPU
// split, and returns how many goals were missed.
func report(w io.Writer, o options, targets []*target, rss *rssResult, storm *stormResult, fl *floodResult, mainHWM int64) (missed int) {
	verdict := func(ok bool) string {
		if ok {
			return "PASS"
		}
		missed++
		return "MISS"
	}
	fmt.Fprintf(w, "\n%s\n\n", environment(o))
	fmt.Fprintln(w, "| target | req/s (median) | p50 | p99 | p99 x hello's | x hello | x peer | goal | result |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---|---|")
	type cpuRow struct {
		name                        string
		server, emulator, generator float64 // µs per operation
		allocs                      float64 // heap allocations of the server per operation; -1 = unknown
		others                      float64 // cores used by other processes of the machine
		errs, ops                   int
		firstErr                    string
	}
	var cpuRows []cpuRow
	for _, t := range targets {
		rates := make([]float64, len(t.rounds))
		idx := make([]int, len(t.rounds))
		errs, ops := 0, 0
		firstErr := ""
		for i, r := range t.rounds {
			rates[i], idx[i] = r.rate(), i
			errs += r.errs
			ops += r.ops
			if firstErr == "" {
				firstErr = r.firstErr
			}
		}
		sort.Slice(idx, func(a, b int) bool { return rates[idx[a]] < rates[idx[b]] })
		mid := t.rounds[idx[(len(idx)-1)/2]] // the median round (the lower middle for an even count)
		rate, ratio, p99Ratio := median(rates), median(t.ratios), median(t.p99Ratios)
		errRate := 0.0
		if errs > 0 {
			errRate = float64(errs) / float64(errs+ops)
		}
		goal, result := "", ""
		switch {
		case t.slug == "hello":
		case t.slug == "full-login":
			goal = fmt.Sprintf(">= %d logins/s, p99 <= %v at c=%d", loginGoal, loginP99Goal, o.loginC)
			result = verdict(rate >= loginGoal && mid.p99 <= loginP99Goal && errRate <= maxErrorRate)
		case t.goal > 0:
			goal = fmt.Sprintf(">= %.2fx", t.goal)
			ok := ratio >= t.goal
			if t.peerGoal > 0 {
				goal += fmt.Sprintf(", >= %.1fx peer", t.peerGoal)
				ok = ok && len(t.peerRatios) > 0 && median(t.peerRatios) >= t.peerGoal
			}
			goal += fmt.Sprintf(", p99 <= %.1fx hello's", p99Goal)
			ok = ok && p99Ratio <= p99Goal
			result = verdict(ok && errRate <= maxErrorRate)
		}
		if errRate > maxErrorRate {
			result += fmt.Sprintf(" (%.1f%% errors)", 100*errRate)
		}
		unit := ""
		if t.slug == "full-login" {
			unit = " logins/s"
		}
		peer := ""
		if len(t.peerRatios) > 0 {
			peer = fmt.Sprintf("%.2f", median(t.peerRatios))
		}
		fmt.Fprintf(w, "| %s | %.0f%s | %s | %s | %.2f | %.2f | %s | %s | %s |\n", t.name, rate, unit, ms(mid.p50), ms(mid.p99), p99Ratio, ratio, peer, goal, result)
		perOp := func(name string) float64 {
			if mid.ops == 0 {
				return 0
			}
			return float64(mid.cpu[name].Microseconds()) / float64(mid.ops)
		}
		allocs := -1.0
		if mid.mallocs >= 0 && mid.ops > 0 {
			allocs = float64(mid.mallocs) / float64(mid.ops)
		}
		cpuRows = append(cpuRows, cpuRow{t.name, perOp("server"), perOp("emulator"), perOp("generator"), allocs,
			mid.others.Seconds() / mid.window.Seconds(), errs, ops, firstErr})
	}
	if rss != nil {
		fmt.Fprintf(w, "| peak RSS of a fresh service, every target at c=%d | %.1f MiB | | | | <= %d MiB | %s |\n",
			rss.c, float64(rss.hwm)/(1<<20), rssGoal>>20, verdict(rss.hwm <= rssGoal))
	}
	if fl != nil {
		fmt.Fprintf(w, "| flood from %d client addresses at c=%d, production limits: VmRSS before / peak during / after | %.1f / %.1f / %.1f MiB | | | | <= %d MiB, no exit | %s |\n",
			fl.addrs, fl.c, mib(fl.before), mib(fl.peak), mib(fl.after), rssGoal>>20, verdict(fl.peak <= rssGoal))
	}
	if storm != nil {
		fmt.Fprintf(w, "| cold storm: %d concurrent /jssdk/config | %d ok; stable_token %d, token %d, getticket %d | %s | %s | | 1 token call + 1 getticket | %s |\n",
			storm.n, storm.ok, storm.stable, storm.classic, storm.getticket, ms(storm.p50), ms(storm.p99),
			verdict(storm.ok == storm.n && storm.stable+storm.classic == 1 && storm.getticket == 1))
	}

	fmt.Fprintln(w, "\nCPU time per operation in the median round, by process (µs), and the serving process's heap allocations per")
	fmt.Fprintln(w, "operation (go_memstats_mallocs_total over the window); the throughput ratio to hello those CPU costs")
	fmt.Fprintln(w, "predict when the machine's cores are the bottleneck; and the cores other processes of the machine used")
	fmt.Fprintln(w, "meanwhile (noise: it should be near 0). \"At best\" is that prediction for a service as cheap as the")
	fmt.Fprintln(w, "bare hello handler, the other processes' costs unchanged: a ratio goal above it cannot be met on this")
	fmt.Fprintln(w, "machine by any service, since the load generator shares the cores:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | server | server allocs/op | emulator | load generator | CPU-bound x hello | at best x hello | other processes (cores) | errors |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---|")
	helloCPU, helloServer := 0.0, 0.0
	for i, r := range cpuRows {
		// A closed loop that saturates the cores completes cores/(CPU per
		// operation) operations per second: the ratio of CPU per operation
		// to hello's is what the throughput ratio would be on an idle machine.
		total := r.server + r.emulator + r.generator
		if i == 0 {
			helloCPU, helloServer = total, r.server
		}
		bound, best := 0.0, 0.0
		if total > 0 {
			bound = helloCPU / total
			best = helloCPU / (helloServer + r.emulator + r.generator)
		}
		e := fmt.Sprintf("%d of %d", r.errs, r.errs+r.ops)
		if r.firstErr != "" {
			e += ": " + truncate(firstLine(r.firstErr), 100)
		}
		allocs := "?"
		if r.allocs >= 0 {
			allocs = fmt.Sprintf("%.0f", r.allocs)
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %.0f | %.0f | %.2f | %.2f | %.2f | %s |\n", r.name, r.server, allocs, r.emulator, r.generator, bound, best, r.others, e)
	}
	fmt.Fprintln(w, "\nEvery round's ratio to hello, with the cores other processes used meanwhile in parentheses, its p99 over")
	fmt.Fprintln(w, "hello's p99, and for /wx its ratio to the peer:")
	fmt.Fprintln(w)
	for _, t := range targets[1:] {
		fmt.Fprintf(w, "- %s:", t.name)
		for i, r := range t.rounds {
			fmt.Fprintf(w, " %.2f (%.2f)", t.ratios[i], r.others.Seconds()/r.window.Seconds())
		}
		fmt.Fprintf(w, "; p99 x hello's:")
		for _, x := range t.p99Ratios {
			fmt.Fprintf(w, " %.2f", x)
		}
		if len(t.peerRatios) > 0 {
			fmt.Fprintf(w, "; x peer:")
			for _, x := range t.peerRatios {
				fmt.Fprintf(w, " %.2f", x)
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	for _, t := range targets {
		if t.slug == "full-login" && len(t.rounds) > 0 {
			rates := make([]float64, len(t.rounds))
			for i, r := range t.rounds {
				rates[i] = r.rate()
			}
			if rate := median(rates); rate > 0 {
				fmt.Fprintf(w, "Full login at concurrency %d: by Little's law the mean latency is %d / %.0f/s = %.1f ms; a p99 <= %v at %d logins/s needs a concurrency well under %.0f.\n",
					o.loginC, o.loginC, rate, 1000*float64(o.loginC)/rate, loginP99Goal, loginGoal, loginGoal*loginP99Goal.Seconds())
			}
		}
	}
	fmt.Fprintf(w, "Peak RSS (VmHWM) of the main service after all rounds at c=%d: %.1f MiB.\n", o.c, float64(mainHWM)/(1<<20))
	if rss != nil {
		fmt.Fprintf(w, "RSS phase at c=%d, targets in this order: %s; VmRSS at the end %.1f MiB.\n", rss.c, strings.Join(rss.rates, ", "), float64(rss.rss)/(1<<20))
	}
	if fl != nil {
		fmt.Fprintf(w, "Flood: %d requests from %d addresses, WeChat qrcode/create calls %d, VmHWM %.1f MiB; statuses: %s.\n",
			fl.requests, fl.addrs, fl.qrCalls, mib(fl.hwm), fl.statusSummary())
	}
	if storm != nil && storm.firstErr != "" {
		fmt.Fprintf(w, "Cold storm: first error: %s\n", truncate(firstLine(storm.firstErr), 200))
	}
	if storm != nil {
		fmt.Fprintf(w, "Cold storm: upstream calls counted by the emulator: %v\n", storm.calls)
	}
	return missed
}

// ms formats d in milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
