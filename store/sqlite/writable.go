package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// checkWritable refuses a database file that this process cannot write,
// before SQLite opens it. jobrun writes its database even to read it (the
// runner locks, lost jobs); and SQLite, handed a file it may only read,
// opens it read-only and makes the -wal and -shm files with the file's own
// mode, read-only too: files that would keep refusing every later open,
// even once the file's permissions are fixed.
//
// It also recovers from such files left by an earlier jobrun: a -wal or
// -shm that this process cannot write, beside a database it can, is given
// the database's mode when this user owns it; otherwise the error names it.
// It opens no file: closing a descriptor of a file drops the process's
// POSIX locks on it, which SQLite may hold through another DB.
func checkWritable(path string) error {
	if err := unix.Access(path, unix.W_OK); err != nil {
		return fmt.Errorf("cannot write the database file (%w): jobrun writes its database even to read it; make the file (and its folder) writable for this user", err)
	}
	db, err := os.Stat(path)
	if err != nil {
		return err
	}
	for _, side := range []string{path + "-wal", path + "-shm"} {
		fi, err := os.Stat(side)
		if errors.Is(err, fs.ErrNotExist) {
			continue // SQLite makes it, with the database's mode
		}
		if err != nil {
			return err
		}
		if unix.Access(side, unix.W_OK) == nil {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == os.Geteuid() {
			if os.Chmod(side, db.Mode().Perm()) == nil && unix.Access(side, unix.W_OK) == nil {
				continue
			}
		}
		return fmt.Errorf("cannot write %s (mode %v), left behind beside the database: remove it while no jobrun uses the database, or make it writable for this user", side, fi.Mode().Perm())
	}
	return nil
}
