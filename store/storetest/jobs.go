package storetest

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/jobrun/jobrun/jobs"
	"github.com/jobrun/jobrun/store"
)

func (s suite) testJobByRef(t *testing.T) {
	db, _ := s.open(t)
	ctx := Ctx(t)
	j := CreateJob(t, db)
	if j.ID == 0 || j.UID == "" || j.Status != jobs.StatusRunning || j.Host == "" ||
		j.CreatedAt.IsZero() || j.StartedAt == nil {
		t.Fatalf("CreateJob left %+v", j)
	}
	for _, ref := range []jobs.Ref{{ID: j.ID}, {UID: j.UID}} {
		got, err := db.Job(ctx, ref)
		if err != nil {
			t.Fatalf("Job(%s): %v", ref, err)
		}
		if !reflect.DeepEqual(got, j) {
			t.Errorf("Job(%s) =\n %+v\nwant\n %+v", ref, got, j)
		}
	}
	for _, ref := range []jobs.Ref{{ID: 999}, {UID: "nosuchuid"}} {
		_, err := db.Job(ctx, ref)
		if !errors.Is(err, jobs.ErrNotFound) || err.Error() != "job "+ref.String()+": not found" {
			t.Errorf("Job(%s): %v, want \"job %s: not found\" wrapping ErrNotFound", ref, err, ref)
		}
	}
}

func (s suite) testCreateJobUID(t *testing.T) {
	db, _ := s.open(t)
	ctx := Ctx(t)
	j := CreateJob(t, db)

	dup := jobs.Job{UID: j.UID}
	if err := db.CreateJob(ctx, &dup); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("uid of a running job: %v, want ErrConflict", err)
	}
	Append(t, db, j.ID, []jobs.Event{Exit(1, jobs.StatusSucceeded, 0)})
	if err := db.CreateJob(ctx, &dup); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("uid of a finished job: %v, want ErrConflict", err)
	}
	for _, uid := range []jobs.UID{"../escape", "123", "UPPER", jobs.UID(strings.Repeat("a", 65))} {
		bad := jobs.Job{UID: uid}
		if err := db.CreateJob(ctx, &bad); !errors.Is(err, jobs.ErrInvalid) {
			t.Errorf("uid %q: %v, want ErrInvalid", uid, err)
		}
	}
}

func (s suite) testJobsPaging(t *testing.T) {
	db, _ := s.open(t)
	ctx := Ctx(t)
	var ids []jobs.ID
	for range 5 {
		ids = append(ids, CreateJob(t, db).ID)
	}
	idsOf := func(list []jobs.Job) []jobs.ID {
		var out []jobs.ID
		for _, j := range list {
			out = append(out, j.ID)
		}
		return out
	}
	tests := []struct {
		name string
		q    store.JobsQuery
		want []jobs.ID
	}{
		{"default", store.JobsQuery{}, []jobs.ID{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"first page", store.JobsQuery{Limit: 2}, []jobs.ID{ids[4], ids[3]}},
		{"second page", store.JobsQuery{Limit: 2, Before: ids[3]}, []jobs.ID{ids[2], ids[1]}},
		{"last page", store.JobsQuery{Limit: 2, Before: ids[1]}, []jobs.ID{ids[0]}},
		{"past the end", store.JobsQuery{Limit: 2, Before: ids[0]}, nil},
		{"limit above max", store.JobsQuery{Limit: 5000}, []jobs.ID{ids[4], ids[3], ids[2], ids[1], ids[0]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, err := db.Jobs(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if list == nil {
				t.Errorf("Jobs(%+v) = nil, want a list (JSON [])", tt.q)
			}
			if got := idsOf(list); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Jobs(%+v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
	if _, err := db.Jobs(ctx, store.JobsQuery{Limit: -1}); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("negative limit: %v, want ErrInvalid", err)
	}
}

func (s suite) testJobLastLine(t *testing.T) {
	ctx := Ctx(t)
	db, _ := s.open(t)
	j := CreateJob(t, db)
	evs := Lines(1, 5, "x")
	Append(t, db, j.ID, evs)
	got, err := db.Job(ctx, jobs.Ref{ID: j.ID})
	if err != nil {
		t.Fatal(err)
	}
	if want := evs[len(evs)-1].Line; got.LastLine != want || got.LastSeq != 5 {
		t.Errorf("last_line %d, last_seq %d; want %d and 5", got.LastLine, got.LastSeq, want)
	}
}
