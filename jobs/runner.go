package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/jobrun/jobrun/jobs/progress"
)

// Defaults of the Runner's durations.
const (
	DefaultKillAfter    = 10 * time.Second
	DefaultFlushAfter   = 100 * time.Millisecond
	DefaultDrainTimeout = 2 * time.Second
	DefaultStoreRetry   = 10 * time.Second
)

// Reads: each stream reads up to readSize bytes at a time into the unused
// tail of a bufSize buffer, and starts a new buffer when fewer than minRead
// bytes are left. Buffers are never reused: events and the echo queue hold
// slices of them, and the garbage collector frees a buffer when the last
// of those is gone.
const (
	bufSize  = 256 << 10
	readSize = 64 << 10
	minRead  = 32 << 10
)

// Spec describes a command to run as a job.
type Spec struct {
	UID     UID      // NewUID() if empty
	Name    string   // default: the command line, strings.Join(Command, " ")
	Command []string // the program and its arguments; required
	Dir     string   // working directory; "" = jobrun's
	Env     []string // nil = os.Environ(); JOBRUN_TOKEN* are never passed on
}

// Runner runs commands as jobs: it stores every byte of their output as
// events in Store, publishes each committed batch to Publisher, and echoes
// the output to Stdout and Stderr. The zero value of each field means its
// documented default; Store is required.
type Runner struct {
	Store     Store
	Publisher Publisher    // nil: nothing is published
	Logger    *slog.Logger // nil: no logging

	KillAfter    time.Duration // grace period from a stop signal to SIGKILL; default 10s
	FlushAfter   time.Duration // how long an unterminated line waits; default 100ms
	DrainTimeout time.Duration // how long to read pipes held open after the child exits; default 2s
	StoreRetry   time.Duration // how long to retry a failing store before giving up; default 10s

	// Progress selects where progress events come from (see
	// progress.Mode); "" means progress.Auto.
	Progress progress.Mode
	// ProgressRegex, when not "", is a regular expression tried first on
	// every line: a named group percent, or current and total, and
	// optionally message (see progress.NewParser).
	ProgressRegex string
	// ProgressInterval is the least time between two progress events of
	// a job (see progress.Coalescer); default progress.DefaultInterval.
	// Negative: no coalescing, every value found is an event.
	ProgressInterval time.Duration

	// PTY runs the command on a new pseudo-terminal instead of pipes:
	// its output is one stream, StreamTTY, echoed to Stdout; Stdin is
	// copied to the terminal (put in raw mode for the job's life if it is
	// a terminal itself; nil: the child reads an end of file); TERM is set
	// to xterm-256color unless the environment has one. See pty.go.
	PTY bool
	// Cols and Rows are the PTY's window size; 0 means 80x24. Run.Resize
	// changes it.
	Cols, Rows int

	// Mask lists secret values (jobrun exec --mask-env) that are replaced
	// by MaskText in the output as it is stored, published and echoed,
	// and in the job's name and command; a multi-line value is masked line
	// by line, and lines shorter than MinMaskLen are not masked (a
	// message says so). Lines "::add-mask::VALUE" printed by the job add
	// VALUE, whatever Mask holds. See mask.go.
	Mask []string

	Stdin  *os.File  // the child's stdin, inherited as is; nil: /dev/null
	Stdout io.Writer // echo of the child's stdout; nil: no echo
	Stderr io.Writer // echo of the child's stderr; nil: no echo
	ErrOut io.Writer // jobrun's own messages about the job; nil: none
}

// Result is how a job ended.
type Result struct {
	Status   Status
	ExitCode int    // the child's, 128+N if killed by signal N, 127/126 if it could not start
	Signal   string // "SIGTERM" when killed by a signal
	StoreErr error  // why storing stopped early, if it did; the job ran on regardless
}

// Run is a running job. It owns these goroutines, which end by themselves
// once the child has exited and its output is stored, and Wait waits for
// all of them:
//   - one reader per stream: reads the pipe, hands each read to the echo
//     and to the recorder, until EOF or DrainTimeout after the child exits;
//   - the supervisor: waits for the child, reaps it, waits for the readers,
//     then sends the exit event and closes the recorder's input;
//   - the recorder and its commit goroutine (see recorder);
//   - the echo writer, which Wait lets finish after the job is stored, so a
//     stuck terminal delays Wait but never the job or its storing;
//   - in PTY mode with a Stdin, the input copier, which the supervisor
//     ends when the child has exited.
type Run struct {
	r    *Runner
	log  *slog.Logger // r.Logger, or a discarding one
	job  Job
	cmd  *exec.Cmd
	rec  *recorder
	echo *echo // nil with no echo
	fg   int   // terminal fd handed to the child's process group, or -1
	// masks masks each stream's bytes before anything else sees them;
	// each is owned by its stream's reader (mask.go).
	masks [2]*masker

	readers    sync.WaitGroup
	supervised chan struct{} // closed when the child is reaped and the exit sent
	childGone  chan struct{} // closed when the child has exited: readers start draining
	stopCtx    func() bool
	result     Result
	waitOnce   sync.Once

	// PTY mode.
	pty         *ptyIO
	ptyClosed   bool          // under mu
	ttyInput    bool          // Stdin is a terminal: its Ctrl-C reaches the child
	inputStop   *os.File      // closing it ends the input copier
	inputDone   chan struct{} // closed when the input copier returns
	termFd      int
	termState   *term.State // the terminal's mode before raw mode
	rawMode     atomic.Bool
	restoreOnce sync.Once

	sayMu sync.Mutex

	mu        sync.Mutex
	pgid      int
	exited    bool // the child has exited: its pgid may be gone
	canceled  bool // jobrun sent it a signal to stop it
	sigints   int
	killTimer *time.Timer
}

// Start creates the job in the store and starts its command. It returns an
// error, and no job, only if jobrun itself fails (the command line is
// empty, the directory does not exist, the store cannot create the job). A
// command that cannot be started still makes a job, which ends failed
// with exit code 127 (not found) or 126 (not executable).
//
// ctx bounds the creation of the job; canceling it later cancels the job
// (see Cancel). Storing goes on after ctx is done.
func (r *Runner) Start(ctx context.Context, s Spec) (*Run, error) {
	if len(s.Command) == 0 || s.Command[0] == "" {
		return nil, fmt.Errorf("start job: empty command: %w", ErrInvalid)
	}
	if r.Store == nil {
		return nil, fmt.Errorf("start job: Runner.Store is nil: %w", ErrInvalid)
	}
	cwd, err := jobDir(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("start job: %w", err)
	}
	parsers, err := r.progressParsers()
	if err != nil {
		return nil, fmt.Errorf("start job: %w", err)
	}
	out, err := r.openOutput()
	if err != nil {
		return nil, fmt.Errorf("start job: %w", err)
	}
	job, secrets, short := r.newJob(s, cwd)
	if err := r.Store.CreateJob(ctx, &job); err != nil {
		out.close()
		return nil, fmt.Errorf("start job: create job: %w", err)
	}
	run := r.newRun(ctx, job, out.tty, parsers, secrets, short)
	cmd, input := run.command(s, out)
	if err := run.startChild(cmd, input, out); err != nil {
		return run.failedStart(s, err, out), nil
	}
	run.pgid = cmd.Process.Pid
	run.log.Debug("job started", "job", job.ID, "pid", run.pgid)
	run.readers.Add(len(out.reads))
	for i, f := range out.reads {
		go run.read(i, f)
	}
	go run.supervise(out.reads)
	run.stopCtx = context.AfterFunc(ctx, run.Cancel)
	return run, nil
}

// output is a job's output channels: pipes (stdout, stderr) or a PTY.
// reads are jobrun's ends, indexed by stream; writes the child's.
type output struct {
	reads, writes []*os.File
	tty           *ptyIO // nil for pipes
}

func (o output) close() {
	for _, f := range append(o.reads, o.writes...) {
		f.Close()
	}
}

// openOutput makes the job's pipes, or its PTY.
func (r *Runner) openOutput() (output, error) {
	if r.PTY {
		tty, err := openPTY(r.Cols, r.Rows)
		if err != nil {
			return output{}, err
		}
		return output{reads: []*os.File{tty.master}, writes: []*os.File{tty.tty}, tty: tty}, nil
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return output{}, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return output{}, err
	}
	return output{reads: []*os.File{outR, errR}, writes: []*os.File{outW, errW}}, nil
}

// newJob is the job to create, its name and command masked, and the
// values to mask (those too short to mask apart).
func (r *Runner) newJob(s Spec, cwd string) (job Job, secrets, short []string) {
	now := time.Now()
	job = Job{UID: s.UID, Name: s.Name, Command: s.Command, Cwd: cwd, Status: StatusRunning,
		CreatedAt: now, StartedAt: &now}
	if job.UID == "" {
		job.UID = NewUID()
	}
	if job.Name == "" {
		job.Name = strings.Join(s.Command, " ")
	}
	secrets, short = maskValues(r.Mask)
	maskJob(&job, secrets)
	return job, secrets, short
}

// newRun sets up the pipeline of a created job (pipeline.go): maskers,
// the recorder and its goroutine, the echo.
func (r *Runner) newRun(ctx context.Context, job Job, tty *ptyIO, parsers [2]*progress.Parser, secrets, short []string) *Run {
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	run := &Run{r: r, job: job, log: log, fg: -1, supervised: make(chan struct{}), childGone: make(chan struct{}), pty: tty}
	run.setupMasks(secrets, short)
	run.rec = newRecorder(r.Store, r.Publisher, log, run.say, job.ID, context.WithoutCancel(ctx),
		orDefault(r.FlushAfter, DefaultFlushAfter), orDefault(r.StoreRetry, DefaultStoreRetry))
	run.rec.setProgress(parsers, r.ProgressInterval)
	if tty != nil {
		run.rec.streams[stdoutIndex].name = StreamTTY
	}
	go func() {
		defer run.guard()
		run.rec.run()
	}()
	if r.Stdout != nil || r.Stderr != nil {
		run.echo = newEcho(r.Stdout, r.Stderr, func(err error) {
			log.Error("echo stopped", "job", job.ID, "err", err)
			run.say("echo of the output stopped: %v", err)
		}, run.guard)
	}
	return run
}

// command is the child's command, with its environment, output and input;
// input is the terminal input a PTY job reads, if any.
func (run *Run) command(s Spec, out output) (cmd *exec.Cmd, input *os.File) {
	r := run.r
	env := s.Env
	if env == nil {
		env = os.Environ()
	}
	cmd = exec.Command(s.Command[0], s.Command[1:]...)
	cmd.Dir = s.Dir
	cmd.Env = childEnv(env, run.job.ID, run.job.UID)
	if out.tty != nil {
		cmd.Env = ptyEnv(cmd.Env)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = out.tty.tty, out.tty.tty, out.tty.tty
		cmd.SysProcAttr = ptyProcAttr()
		if input = ptyInput(r.Stdin); input != nil {
			if err := run.makeRaw(input); err != nil {
				run.log.Warn("terminal input stays in its mode", "job", run.job.ID, "err", err)
			}
			run.ttyInput = run.termState != nil
		}
	} else {
		if r.Stdin != nil {
			cmd.Stdin = r.Stdin
		}
		cmd.Stdout, cmd.Stderr = out.writes[stdoutIndex], out.writes[stderrIndex]
		cmd.SysProcAttr, run.fg = procAttr(r.Stdin)
	}
	run.cmd = cmd
	return cmd, input
}

// startChild starts cmd (and a PTY job's input copier), then closes the
// child's ends of the output: EOF comes when it and its children are done.
func (run *Run) startChild(cmd *exec.Cmd, input *os.File, out output) error {
	err := startOnLockedThread(cmd, run.childGone)
	for _, f := range out.writes {
		f.Close()
	}
	if err == nil && out.tty != nil {
		err = run.startInput(input)
		if err != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
			close(run.childGone) // releases the starting thread
		}
	}
	return err
}

// failedStart ends a job whose command did not start: it fails with the
// exit code a shell gives (127 not found, 126 not executable).
func (run *Run) failedStart(s Spec, err error, out output) *Run {
	for _, f := range out.reads {
		f.Close()
	}
	run.ptyClosed = true
	run.RestoreTerminal()
	if run.fg >= 0 {
		reclaimForeground(run.fg)
	}
	code, msg := startFailure(err)
	run.say("%s: %s", s.Command[0], msg)
	run.log.Info("command did not start", "job", run.job.ID, "err", err)
	run.result = Result{Status: StatusFailed, ExitCode: code}
	run.sendExit(time.Now())
	close(run.supervised)
	run.stopCtx = func() bool { return true }
	return run
}

// Job returns the job as created, with its ID and LastSeq, the last seq
// stored so far. Once Wait has returned, it also has the final status, exit
// code, signal and finish time, if the exit event was stored.
func (run *Run) Job() Job {
	run.mu.Lock()
	j := run.job
	run.mu.Unlock()
	j.LastSeq = max(j.LastSeq, Seq(run.rec.stored.Load()))
	return j
}

// Signal forwards sig to the job's whole process group, to stop it: the job
// counts as canceled, and if it has not exited KillAfter later, the group
// gets SIGKILL. A second SIGINT sends SIGKILL at once. Signal does nothing
// once the child has exited.
func (run *Run) Signal(sig os.Signal) {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return
	}
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.exited || run.pgid == 0 {
		return
	}
	run.canceled = true
	if s == syscall.SIGINT {
		run.sigints++
		if run.sigints > 1 {
			s = syscall.SIGKILL
		}
	}
	run.kill(s)
	if s != syscall.SIGKILL && run.killTimer == nil {
		run.killTimer = time.AfterFunc(orDefault(run.r.KillAfter, DefaultKillAfter), func() {
			run.mu.Lock()
			defer run.mu.Unlock()
			if !run.exited {
				run.kill(syscall.SIGKILL)
			}
		})
	}
}

// Cancel stops the job: SIGTERM to its process group, then SIGKILL after
// KillAfter.
func (run *Run) Cancel() { run.Signal(syscall.SIGTERM) }

// Kill stops the job at once with SIGKILL to its process group.
func (run *Run) Kill() { run.Signal(syscall.SIGKILL) }

// kill signals the process group. Called with mu held, before the child
// is reaped, so the group id cannot have been reused.
func (run *Run) kill(s syscall.Signal) {
	if err := syscall.Kill(-run.pgid, s); err != nil && !errors.Is(err, syscall.ESRCH) {
		run.rec.log.Warn("signal failed", "job", run.job.ID, "signal", s, "err", err)
	}
}

// Wait waits for the job to end, its output and exit event to be stored,
// and the echo to be written, and returns how it ended. It may be called
// more than once.
func (run *Run) Wait() Result {
	run.waitOnce.Do(func() {
		<-run.supervised
		<-run.rec.done
		if run.echo != nil {
			run.echo.close()
		}
		run.RestoreTerminal() // after the echo: the job's output was meant for a raw terminal
		run.stopCtx()
		run.result.StoreErr = run.rec.storeErr
		if ex := run.rec.exit; ex != nil && run.rec.committed == ex.Seq {
			run.mu.Lock()
			run.job.Status, run.job.ExitCode, run.job.Signal = ex.Status, ex.ExitCode, ex.Signal
			run.job.Incomplete, run.job.IncompleteReason = ex.Incomplete, ex.IncompleteReason
			finished := ex.Time
			run.job.FinishedAt = &finished
			run.mu.Unlock()
		}
	})
	return run.result
}

// say writes one of jobrun's own messages about the job to ErrOut. Several
// goroutines may have something to say.
func (run *Run) say(format string, args ...any) {
	if run.r.ErrOut == nil {
		return
	}
	run.sayMu.Lock()
	defer run.sayMu.Unlock()
	eol := "\n"
	if run.rawMode.Load() {
		eol = "\r\n" // a raw terminal does not return the carriage
	}
	fmt.Fprintf(run.r.ErrOut, "jobrun: "+format+eol, args...)
}

// supervise waits for the child, reaps it, drains the pipes for at most
// DrainTimeout, and hands the exit event to the recorder.
func (run *Run) supervise(pipes []*os.File) {
	defer close(run.supervised)
	defer run.guard()
	markExited := func() bool {
		run.mu.Lock()
		defer run.mu.Unlock()
		run.exited = true
		if run.killTimer != nil {
			run.killTimer.Stop()
		}
		return run.canceled
	}
	canceled := false
	if waitExited(run.pgid) {
		canceled = markExited()
	}
	err := run.cmd.Wait()
	canceled = markExited() || canceled
	exitTime := time.Now()
	if run.fg >= 0 {
		reclaimForeground(run.fg)
	}
	if run.pty != nil {
		run.stopInput() // the terminal stays raw until Wait has echoed the last output
	}

	// Grandchildren may hold the pipes open: readers now stop once their
	// pipe has been quiet for DrainTimeout. The deadline set here wakes a
	// reader already blocked in a read; each further read renews it.
	close(run.childGone)
	drain := orDefault(run.r.DrainTimeout, DefaultDrainTimeout)
	for _, f := range pipes {
		f.SetReadDeadline(time.Now().Add(drain))
	}
	run.readers.Wait()
	if run.pty != nil {
		run.closePTY()
	} else {
		for _, f := range pipes {
			f.Close()
		}
	}

	res := Result{Status: StatusFailed, ExitCode: 125}
	if st := run.cmd.ProcessState; st != nil {
		ws, _ := st.Sys().(syscall.WaitStatus)
		switch {
		case ws.Signaled():
			res.ExitCode = 128 + int(ws.Signal())
			res.Signal = signalName(ws.Signal())
		default:
			res.ExitCode = ws.ExitStatus()
		}
		switch {
		case canceled, ws.Signaled() && ws.Signal() == syscall.SIGINT && (run.fg >= 0 || run.ttyInput):
			res.Status = StatusCanceled
		case res.ExitCode == 0:
			res.Status = StatusSucceeded
		}
	} else {
		run.rec.log.Error("waiting for the child failed", "job", run.job.ID, "err", err)
	}
	run.result = res
	run.sendExit(exitTime)
}

// sendExit hands the exit event to the recorder and closes its input.
func (run *Run) sendExit(t time.Time) {
	code := run.result.ExitCode
	run.rec.in <- chunk{exit: &Event{Time: t, Type: TypeExit, Status: run.result.Status,
		ExitCode: &code, Signal: run.result.Signal}}
	close(run.rec.in)
}
