package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// genConfig is what the line generator (fanout -gen, the job's command)
// prints.
type genConfig struct {
	rate   float64 // lines per second; 0: as fast as the pipe takes them
	burst  int     // lines written together, one write per burst
	lines  int     // lines in all
	format string  // "fox": 60-byte numbered lines; "seq": what seq 1 N prints
	report string  // file to write the runtime to, in seconds
}

// foxLine is the template of a "fox" line: the same 60 bytes as
// bench/run.sh's input file, the line number in both %08d fields. Nothing
// in it looks like progress, so jobrun stores line events only.
const foxLine = "00000000 the quick brown fox jumps over the lazy dog 00000000\n"

// generate is the job: it waits for the start signal (a byte, or the end,
// on its stdin, which jobrun exec passes through from the fanout process),
// so that every viewer is connected before the first line is printed,
// then prints cfg.lines lines at cfg.rate in bursts of cfg.burst, and
// writes its runtime (start signal to last write) to cfg.report.
//
// Bursts are due at fixed times from the start (burst k at k*burst/rate):
// a late burst does not shift the later ones, so the average rate holds
// even when the machine is busy.
func generate(cfg genConfig) error {
	var b [1]byte
	if _, err := os.Stdin.Read(b[:]); err != nil && err != io.EOF {
		return fmt.Errorf("gen: wait for the start signal: %w", err)
	}
	start := time.Now()
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	buf := make([]byte, 0, 64<<10)
	burst := max(cfg.burst, 1)
	for i := 1; i <= cfg.lines; i += burst {
		if cfg.rate > 0 {
			due := start.Add(time.Duration(float64(i-1) / cfg.rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		buf = buf[:0]
		for n := i; n < i+burst && n <= cfg.lines; n++ {
			buf = appendLine(buf, cfg.format, n)
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if cfg.rate > 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	elapsed := time.Since(start)
	if cfg.report != "" {
		return os.WriteFile(cfg.report, []byte(strconv.FormatFloat(elapsed.Seconds(), 'f', 6, 64)), 0o600)
	}
	return nil
}

// appendLine appends line n in format f.
func appendLine(b []byte, f string, n int) []byte {
	if f == "seq" {
		b = strconv.AppendInt(b, int64(n), 10)
		return append(b, '\n')
	}
	start := len(b)
	b = append(b, foxLine...)
	putDigits(b[start:start+8], n)
	putDigits(b[start+len(foxLine)-9:start+len(foxLine)-1], n)
	return b
}

// putDigits writes n into d as zero-padded decimal (the low digits only if
// n is too wide).
func putDigits(d []byte, n int) {
	for i := len(d) - 1; i >= 0; i-- {
		d[i] = byte('0' + n%10)
		n /= 10
	}
}
