package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/jobrun/jobrun/jobs"
)

// A spool is an agent's local store of one job that it reports to a
// server (jobrun exec --server): a database of its own, <dir>/<uid>.db,
// never the server's database. The runner writes the job into it as into
// any DB, and the agent delivers it from there, so nothing is lost while
// the server is unreachable. Once the server has acknowledged every event
// of the finished job, the spool is removed; until then it stays on disk
// for jobrun push.
//
// Whoever holds a Spool owns the delivery of its job: an flock on
// <dir>/<uid>.lock, held from OpenSpool to Close, keeps every other
// process (another jobrun push, an exec delivering pending spools) away
// from it. An exec holds its job's spool for its whole life; a spool that
// OpenSpool can take is one whose exec has ended (or died: Open's
// RecoverLost then ends its job as lost).
type Spool struct {
	*DB
	uid  jobs.UID
	dir  string
	lock *os.File
}

// ErrSpoolBusy means another process holds the spool.
var ErrSpoolBusy = errors.New("spool is held by another process")

// spoolExt is the extension of spool databases.
const spoolExt = ".db"

// CreateSpool makes a new spool for job uid in dir (created with mode
// 0700) and opens it.
func CreateSpool(ctx context.Context, dir string, uid jobs.UID, opts Options) (*Spool, error) {
	return openSpool(ctx, dir, uid, opts, true)
}

// OpenSpool opens the existing spool of job uid in dir. It fails with an
// error wrapping ErrSpoolBusy when another process holds it, and with one
// wrapping fs.ErrNotExist when it is gone (delivered meanwhile).
func OpenSpool(ctx context.Context, dir string, uid jobs.UID, opts Options) (*Spool, error) {
	return openSpool(ctx, dir, uid, opts, false)
}

func openSpool(ctx context.Context, dir string, uid jobs.UID, opts Options, create bool) (*Spool, error) {
	if ref, err := jobs.ParseRef(string(uid)); err != nil || ref.UID == "" {
		return nil, fmt.Errorf("spool: %q is not a job uid: %w", uid, jobs.ErrInvalid)
	}
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
	}
	s := &Spool{uid: uid, dir: dir}
	lock, err := lockSpool(s.lockPath())
	if err != nil {
		return nil, err
	}
	s.lock = lock
	_, err = os.Stat(s.Path())
	switch {
	case create && err == nil:
		err = fmt.Errorf("spool %s: already exists: %w", s.Path(), jobs.ErrConflict)
	case create && errors.Is(err, fs.ErrNotExist):
		err = nil
	case !create && errors.Is(err, fs.ErrNotExist):
		// Delivered and removed by someone who held the lock before us;
		// drop the lock file we may just have recreated.
		os.Remove(s.lockPath())
		err = fmt.Errorf("spool %s: %w", s.Path(), fs.ErrNotExist)
	}
	if err != nil {
		lock.Close()
		return nil, err
	}
	s.DB, err = Open(ctx, s.Path(), opts)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	return s, nil
}

// lockSpool takes the spool's flock without waiting. The lock file is
// checked to still be the one at path after locking: a holder removes it
// (while locked) when it removes the spool.
func lockSpool(path string) (*os.File, error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("spool lock: %w", err)
		}
		for {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
			if err != unix.EINTR {
				break
			}
		}
		if err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("spool %s: %w", strings.TrimSuffix(path, ".lock"), ErrSpoolBusy)
			}
			return nil, fmt.Errorf("spool lock %s: %w", path, err)
		}
		var held, now unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &held); err != nil {
			f.Close()
			return nil, fmt.Errorf("spool lock %s: %w", path, err)
		}
		if err := unix.Stat(path, &now); err == nil && now.Ino == held.Ino && now.Dev == held.Dev {
			return f, nil
		} else if err != nil && !errors.Is(err, syscall.ENOENT) {
			f.Close()
			return nil, fmt.Errorf("spool lock %s: %w", path, err)
		}
		f.Close() // removed or replaced while we locked it: try again
	}
}

// UID returns the uid of the spool's job.
func (s *Spool) UID() jobs.UID { return s.uid }

func (s *Spool) lockPath() string { return filepath.Join(s.dir, string(s.uid)+".lock") }

// Path returns the spool database's path.
func (s *Spool) Path() string { return filepath.Join(s.dir, string(s.uid)+spoolExt) }

// Close closes the spool's database and releases it, leaving its files for
// a later delivery. A second Close does nothing.
func (s *Spool) Close() error {
	var err error
	if s.DB != nil {
		err = s.DB.Close()
		s.DB = nil
	}
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
	return err
}

// Remove closes the spool and deletes its files: call it once the server
// has acknowledged everything.
func (s *Spool) Remove() error {
	if s.lock == nil {
		return fmt.Errorf("spool %s: already closed", s.Path())
	}
	var errs []error
	if s.DB != nil {
		errs = append(errs, s.DB.Close())
		s.DB = nil
	}
	p := s.Path()
	for _, f := range []string{p, p + "-wal", p + "-shm", p + "-journal"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(p + ".locks"); err != nil {
		errs = append(errs, err)
	}
	// Last, still holding it: whoever opens the lock file from now on
	// finds it removed (see lockSpool), or the spool gone.
	if err := os.Remove(s.lockPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	s.lock.Close()
	s.lock = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove spool %s: %w", p, err)
	}
	return nil
}

// Shelve closes the spool and moves its database into <dir>/refused/,
// where Spools no longer finds it: for a job that the server refuses for
// good (ended as lost there, or conflicting), so that later deliveries
// stop trying while the output stays on disk. It returns the new path.
func (s *Spool) Shelve() (string, error) {
	if s.lock == nil {
		return "", fmt.Errorf("spool %s: already closed", s.Path())
	}
	defer func() {
		s.lock.Close()
		s.lock = nil
	}()
	p := s.Path()
	if s.DB != nil {
		err := s.DB.Close() // the last connection checkpoints the WAL
		s.DB = nil
		if err != nil {
			return "", fmt.Errorf("shelve spool %s: %w", p, err)
		}
	}
	shelf := filepath.Join(s.dir, "refused")
	if err := os.MkdirAll(shelf, 0o700); err != nil {
		return "", fmt.Errorf("shelve spool %s: %w", p, err)
	}
	to := filepath.Join(shelf, filepath.Base(p))
	for _, suffix := range []string{"-wal", "-shm", ""} {
		if err := os.Rename(p+suffix, to+suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("shelve spool %s: %w", p, err)
		}
	}
	os.RemoveAll(p + ".locks")
	os.Remove(s.lockPath())
	return to, nil
}

// Spools lists the uids of the spools in dir (none if dir does not exist).
func Spools(dir string) ([]jobs.UID, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list spools in %s: %w", dir, err)
	}
	var uids []jobs.UID
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), spoolExt)
		if !ok || e.IsDir() {
			continue
		}
		if ref, err := jobs.ParseRef(name); err == nil && ref.UID != "" {
			uids = append(uids, ref.UID)
		}
	}
	return uids, nil
}
