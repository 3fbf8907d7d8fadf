package storetest

import (
	"fmt"
	"testing"

	"github.com/jobrun/jobrun/jobs"
)

// BenchLines returns n stdout line events of about 60 bytes from seq
// first, as the backends' benchmarks store.
func BenchLines(first jobs.Seq, n int) []jobs.Event {
	evs := Lines(first, n, "")
	for i := range evs {
		evs[i].Data = fmt.Appendf(nil, "%-50s%09d", "2026-11-25 21:00:00 compiling package", evs[i].Seq)
	}
	return evs
}

// BenchReplay reads job id, whose last seq is total, back in pages of
// page events for each iteration of b, as a replay to a new viewer does,
// and reports events/s.
func BenchReplay(b *testing.B, db EventReader, id jobs.ID, total jobs.Seq, page int) {
	ctx := Ctx(b)
	read := 0
	for b.Loop() {
		after := jobs.Seq(0)
		for {
			evs, err := db.Events(ctx, id, after, page)
			if err != nil {
				b.Fatal(err)
			}
			if len(evs) == 0 {
				break
			}
			after = evs[len(evs)-1].Seq
			read += len(evs)
		}
		if after != total {
			b.Fatalf("read up to seq %d, want %d", after, total)
		}
	}
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "events/s")
}
