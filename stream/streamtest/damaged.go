package streamtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"os"
	"testing"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store/sqlite"
)

// Damaged describes the database DamagedDB made.
type Damaged struct {
	Job    jobs.Job     // the job, finished, as stored
	Events []jobs.Event // its events as stored before the damage
	Log    []byte       // its whole output (GET /log), before the damage
	// Seq is the seq of the line whose page was overwritten: reads of
	// the chunk row holding it fail; the events before that chunk read
	// fine.
	Seq jobs.Seq
}

// DamagedLines is the number of line events of DamagedDB's job (about 3 MB
// of output), and DamagedSeq the line whose page it overwrites.
const (
	DamagedLines = 60000
	DamagedSeq   = 30000
)

// DamagedDB makes a database file at path with one finished job of about
// 3 MB of output, closes it, and damages it as a failing disk would: the
// file page holding line DamagedSeq's bytes, in the middle of a chunk
// row's body (an overflow page), is overwritten with 0xFF bytes, which
// breaks the row's overflow chain: SQLite reports the database damaged
// when a read reaches that row, and every row before it reads fine.
func DamagedDB(t testing.TB, path string) Damaged {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path, sqlite.Options{Host: "testhost", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open db: %v", err)
	}
	j := jobs.Job{Name: "damaged", Command: []string{"damaged"}, Cwd: "/"}
	if err := db.CreateJob(ctx, &j); err != nil {
		t.Fatalf("create job: %v", err)
	}
	evs := append(Lines(1, DamagedLines), ExitEvent(DamagedLines+1))
	if err := db.AppendEvents(ctx, j.ID, evs); err != nil {
		t.Fatalf("append: %v", err)
	}
	if j, err = db.Job(ctx, jobs.Ref{ID: j.ID}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil { // the last connection: the WAL goes into the file
		t.Fatal(err)
	}
	var log bytes.Buffer
	for _, e := range evs[:DamagedLines] {
		log.Write(e.Data)
		log.WriteString(e.EOL)
	}

	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pageSize := int(binary.BigEndian.Uint16(file[16:18]))
	marker := evs[DamagedSeq-1].Data
	at := bytes.Index(file, marker)
	if at < 0 || pageSize < 512 || bytes.Count(file, marker) != 1 {
		t.Fatalf("line %d found at %d (%d times) in the file, page size %d", DamagedSeq, at, bytes.Count(file, marker), pageSize)
	}
	page := at / pageSize * pageSize
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xff}, pageSize), int64(page)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	t.Logf("damaged page %d of %s (line %d)", page/pageSize+1, path, DamagedSeq)
	return Damaged{Job: j, Events: evs, Log: log.Bytes(), Seq: DamagedSeq}
}
