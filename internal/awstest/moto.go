// Package awstest runs moto_server, an emulator of the AWS APIs (S3,
// Secrets Manager, DynamoDB, …), on a loopback port for the tests of any
// package, and hands out what talks to it: an aws.Config, clients, and the
// environment variables that point the AWS SDK of sesrouter (in process
// or a child process) at it.
//
// One server runs per test process: the first Moto call starts it, every
// later one shares it, and it stops when the test process ends (Stop, from
// a TestMain, stops it sooner). Tests keep apart by naming what they make
// after themselves (Bucket). moto must be installed: a machine without it
// fails the test that needs it, saying where it looked; no test is
// skipped for want of it.
package awstest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Region, AccessKeyID and SecretAccessKey are what clients of the server
// use; moto accepts any credentials.
const (
	Region          = "us-east-1"
	AccessKeyID     = "AKIAMOTOTESTING00000"
	SecretAccessKey = "moto-testing-secret-access-key"
)

// startTimeout bounds how long a candidate gets to answer on its port:
// importing moto takes seconds on a busy machine. Reaching it fails the
// start; it is no measure of how long a start should take.
const startTimeout = 2 * time.Minute

// Server is a running moto_server.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:PORT.
	URL string
	// Command is the command line that runs it.
	Command []string

	cmd    *exec.Cmd
	out    *tailBuffer
	exited chan struct{}
}

// shared is the server of this test process, started at the first Moto
// call. It is the one package-level variable of the module that changes:
// a test process has one server, as it has one environment.
var shared struct {
	mu  sync.Mutex
	srv *Server
	err error // why it could not start; reported to every caller
}

// Moto returns the moto_server of this test process, starting it at the
// first call; tb fails (t.Fatal, never a skip) when moto cannot be found
// or does not start, with every command tried and why it failed. Call it
// outside a synctest bubble: the server's process and its waits must not
// belong to one.
func Moto(tb testing.TB) *Server {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = start()
	}
	if shared.err != nil {
		tb.Fatalf("awstest: %v", shared.err)
	}
	return shared.srv
}

// Stop stops the server of this test process, if one runs; a later Moto
// starts a new one. A TestMain calls it after m.Run; without that, the
// server is killed when the test process exits.
func Stop() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil {
		shared.srv.stop()
	}
	shared.srv, shared.err = nil, nil
}

// Candidate is one way of running moto_server: a command line before its
// -H HOST -p PORT arguments.
type Candidate struct {
	Command []string
	// Why says where it was found.
	Why string
}

// Candidates returns the ways of running moto_server this machine may
// have, in the order they are tried, and the places looked at that had
// none (for the message when nothing works). A shell without pyenv on
// PATH sees only the system's python3, so pyenv's folders are looked at
// directly:
//
//  1. $MOTO_SERVER, when set: a moto_server executable;
//  2. moto_server on PATH;
//  3. ~/.pyenv/shims/moto_server;
//  4. ~/.pyenv/versions/*/bin/python3 (newest version first), then
//     python3 on PATH, each as "python3 -m moto.server", when it can
//     import moto.
func Candidates() (found []Candidate, looked []string) {
	seen := map[string]bool{}
	add := func(why string, cmd ...string) {
		key := strings.Join(cmd, " ")
		if !seen[key] {
			seen[key] = true
			found = append(found, Candidate{Command: cmd, Why: why})
		}
	}
	if p := os.Getenv("MOTO_SERVER"); p != "" {
		add("$MOTO_SERVER", p)
	}
	if p, err := exec.LookPath("moto_server"); err == nil {
		add("moto_server on PATH", p)
	} else {
		looked = append(looked, "moto_server on PATH: none")
	}
	home, _ := os.UserHomeDir()
	pyenv := os.Getenv("PYENV_ROOT")
	if pyenv == "" && home != "" {
		pyenv = filepath.Join(home, ".pyenv")
	}
	if pyenv != "" {
		shim := filepath.Join(pyenv, "shims", "moto_server")
		if isExecutable(shim) {
			add("pyenv's shim", shim)
		} else {
			looked = append(looked, shim+": none")
		}
		versions, _ := filepath.Glob(filepath.Join(pyenv, "versions", "*", "bin", "python3"))
		slices.SortFunc(versions, func(a, b string) int { return compareVersions(b, a) })
		for _, py := range versions {
			if err := canImportMoto(py); err != nil {
				looked = append(looked, py+": "+err.Error())
				continue
			}
			add("pyenv version "+filepath.Base(filepath.Dir(filepath.Dir(py))), py, "-m", "moto.server")
		}
	}
	if py, err := exec.LookPath("python3"); err == nil {
		if err := canImportMoto(py); err != nil {
			looked = append(looked, py+": "+err.Error())
		} else {
			add("python3 on PATH", py, "-m", "moto.server")
		}
	}
	return found, looked
}

// canImportMoto reports whether the Python interpreter py has moto, by
// finding the module without importing it (an import takes seconds).
func canImportMoto(py string) error {
	out, err := exec.Command(py, "-c", "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('moto') else 3)").CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() == 3:
		return errors.New("no moto module")
	case err != nil:
		return fmt.Errorf("%v %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// compareVersions orders pyenv version folders by their version numbers
// (3.9 before 3.11).
func compareVersions(a, b string) int {
	num := func(p string) []int {
		var n []int
		for f := range strings.SplitSeq(filepath.Base(filepath.Dir(filepath.Dir(p))), ".") {
			v := 0
			for _, c := range f {
				if c < '0' || c > '9' {
					break
				}
				v = v*10 + int(c-'0')
			}
			n = append(n, v)
		}
		return n
	}
	return slices.Compare(num(a), num(b))
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// start starts the first candidate that answers on a free loopback port.
func start() (*Server, error) {
	found, looked := Candidates()
	var tried []string
	for _, c := range found {
		srv, err := startCandidate(c)
		if err == nil {
			return srv, nil
		}
		tried = append(tried, fmt.Sprintf("%s (%s): %v", strings.Join(c.Command, " "), c.Why, err))
	}
	return nil, fmt.Errorf("moto_server could not be started; moto (pip install 'moto[server]') is needed by this test.\ntried:\n  %s\nlooked at:\n  %s",
		orNone(tried), orNone(looked))
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "(nothing)"
	}
	return strings.Join(s, "\n  ")
}

// startCandidate runs c on a port that was free a moment ago (another
// port when it turns out taken) and waits until it answers.
func startCandidate(c Candidate) (*Server, error) {
	var err error
	for range 3 {
		var srv *Server
		if srv, err = startOn(c, freePort()); err == nil {
			return srv, nil
		}
		if !strings.Contains(err.Error(), "in use") {
			return nil, err
		}
	}
	return nil, err
}

// freePort returns a loopback port free a moment ago ("0" if none).
func freePort() string {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "0"
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// startOn runs c on 127.0.0.1:port and waits until it answers HTTP, it
// exits, or startTimeout passes.
func startOn(c Candidate, port string) (*Server, error) {
	args := append(slices.Clone(c.Command[1:]), "-H", "127.0.0.1", "-p", port)
	srv := &Server{URL: "http://127.0.0.1:" + port, Command: append([]string{c.Command[0]}, args...),
		out: &tailBuffer{max: 16 << 10}, exited: make(chan struct{})}
	started := make(chan error, 1)
	// The process is started and waited for on a goroutine locked to its
	// thread for good: Pdeathsig kills the server when that thread ends,
	// which is when the test process ends, so that no server outlives it.
	go func() {
		runtime.LockOSThread()
		cmd := exec.Command(srv.Command[0], args...)
		cmd.Env = serverEnv()
		cmd.Dir = os.TempDir() // no .python-version of the working directory picks another Python
		cmd.Stdout, cmd.Stderr = srv.out, srv.out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		if err := cmd.Start(); err != nil {
			started <- err
			close(srv.exited)
			return
		}
		srv.cmd = cmd
		started <- nil
		_ = cmd.Wait()
		close(srv.exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	if err := srv.waitReady(); err != nil {
		srv.stop()
		return nil, err
	}
	return srv, nil
}

// serverEnv is the test process's environment without what would change
// the server's port or send it elsewhere.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "MOTO_PORT" || k == "MOTO_HOST" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// waitReady polls the server until it answers an HTTP request (it binds
// its port seconds after it starts, once moto is imported), it exits, or
// startTimeout passes.
func (s *Server) waitReady() error {
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 5 * time.Second}
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(s.URL + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("exited before it answered: %s", lastLines(s.out.String(), 5))
		case <-deadline.C:
			return fmt.Errorf("did not answer on %s within %s: %s", s.URL, startTimeout, lastLines(s.out.String(), 5))
		case <-tick.C:
		}
	}
}

// stop ends the server's process group and waits for it to exit.
func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}

// Output is the end of what the server printed, for a failing test's
// log.
func (s *Server) Output() string { return s.out.String() }

// Env is the environment that points the AWS SDK's default configuration
// (config.LoadDefaultConfig) at the server, every service at once
// (AWS_ENDPOINT_URL), with the test credentials and region, no shared
// configuration and no instance metadata: for a child process, or for
// t.Setenv (Setenv). emptyFile is a file with nothing in it, the SDK's
// shared configuration and credentials files.
func (s *Server) Env(emptyFile string) map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL":                    s.URL,
		"AWS_REGION":                          Region,
		"AWS_DEFAULT_REGION":                  "",
		"AWS_ACCESS_KEY_ID":                   AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":               SecretAccessKey,
		"AWS_SESSION_TOKEN":                   "",
		"AWS_PROFILE":                         "",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "",
		"AWS_USE_FIPS_ENDPOINT":               "",
		"AWS_USE_DUALSTACK_ENDPOINT":          "",
		"AWS_EC2_METADATA_DISABLED":           "true",
		"AWS_CONFIG_FILE":                     emptyFile,
		"AWS_SHARED_CREDENTIALS_FILE":         emptyFile,
	}
}

// Setenv points the AWS SDK's default configuration of this process at
// the server for the rest of tb (Env, with t.Setenv: tb cannot be
// parallel).
func (s *Server) Setenv(tb testing.TB) {
	tb.Helper()
	empty := filepath.Join(tb.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		tb.Fatalf("awstest: %v", err)
	}
	for k, v := range s.Env(empty) {
		tb.Setenv(k, v)
	}
}

// Name returns a name for something a test makes on the server (a bucket,
// a secret, a table): lower case letters, digits and hyphens, from tb's
// name, with a suffix of the time so that a rerun in the same process
// (-count) gets a new one; at most 63 characters, as S3 wants.
func Name(tb testing.TB) string {
	var b strings.Builder
	for _, r := range strings.ToLower(tb.Name()) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	suffix := fmt.Sprintf("-%x", time.Now().UnixNano()&0xffffffffff)
	base := strings.Trim(b.String(), "-")
	if len(base) > 63-len(suffix) {
		base = strings.Trim(base[:63-len(suffix)], "-")
	}
	if base == "" {
		base = "t"
	}
	return base + suffix
}

// lastLines returns the last n lines of s, on one line.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return "(no output)"
	}
	return strings.Join(lines, " | ")
}

// tailBuffer keeps the last max bytes written to it; safe for concurrent
// use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
