package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pidDir records the PIDs of the processes the harness starts, one file
// each, so that scripts/chaos.sh can stop them by PID should the harness
// itself die. A file is removed once its process has been stopped.
type pidDir string

// add records pid under name.
func (d pidDir) add(name string, pid int) error {
	return os.WriteFile(filepath.Join(string(d), name+".pid"), []byte(strconv.Itoa(pid)+"\n"), 0o644)
}

// remove forgets name.
func (d pidDir) remove(name string) { _ = os.Remove(filepath.Join(string(d), name+".pid")) }

// child is a process started and stopped by the harness.
type child struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait returned
	pids   pidDir
}

// startChild starts cmd and records its PID under name.
func startChild(cmd *exec.Cmd, name string, pids pidDir) (*child, error) {
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, exited: make(chan struct{}), pids: pids}
	if err := pids.add(name, cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	go func() {
		_ = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// stop sends sig, waits up to grace for the process to exit, then kills
// it; it returns once the process is gone.
func (c *child) stop(sig syscall.Signal, grace time.Duration) {
	defer c.pids.remove(c.name)
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.exited:
		return
	case <-time.After(grace):
	}
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// alive reports whether the process still runs.
func (c *child) alive() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// childEnv is the environment of the processes the harness starts: the
// harness's own, without the variables that would change how apikey
// behaves (its database, pepper, prefix, Redis, tracing).
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "APIKEY_") || strings.HasPrefix(name, "OTEL_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// checkPortFree fails when something listens on 127.0.0.1:port already.
func checkPortFree(port int) error {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d is taken (another chaos run?); choose another: %w", port, err)
	}
	return ln.Close()
}

// sleep waits for d or until ctx is done, and reports ctx.Err().
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// pgCluster is a throw-away PostgreSQL cluster of the harness's own, on a
// loopback port with its Unix socket in the work directory. As root, its
// commands run as the user postgres (PostgreSQL refuses root).
type pgCluster struct {
	bin  string // directory of initdb, pg_ctl
	dir  string // parent of the data and socket directories
	port int
	as   []string // command prefix: runuser -u postgres --, or nothing
	uid  int      // owner of the data directory; -1 to keep the current one
	gid  int
}

// newPGCluster prepares a cluster in dir/pg; bin empty means the newest
// /usr/lib/postgresql/*/bin.
func newPGCluster(bin, dir string, port int) (*pgCluster, error) {
	if bin == "" {
		found, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		sort.Slice(found, func(i, j int) bool { return pgVersion(found[i]) < pgVersion(found[j]) })
		if len(found) == 0 {
			return nil, errors.New("no PostgreSQL server found under /usr/lib/postgresql; set -pg-bin")
		}
		bin = found[len(found)-1]
	}
	c := &pgCluster{bin: bin, dir: dir, port: port, uid: -1, gid: -1}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the user postgres: %w", err)
		}
		c.uid, _ = strconv.Atoi(u.Uid)
		c.gid, _ = strconv.Atoi(u.Gid)
		c.as = []string{"runuser", "-u", "postgres", "--"}
	}
	return c, nil
}

// pgVersion reads the major version from a path like
// /usr/lib/postgresql/15/bin.
func pgVersion(bin string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(bin)))
	return n
}

// data is the data directory.
func (c *pgCluster) data() string { return filepath.Join(c.dir, "pg") }

// runDir is the directory of the server's Unix socket and log, owned by the
// cluster's user.
func (c *pgCluster) runDir() string { return filepath.Join(c.dir, "pg-run") }

// url is the connection URL of the cluster's postgres database at addr
// (the cluster itself, or a proxy in front of it).
func (c *pgCluster) url(addr string) string {
	return "postgres://postgres@" + addr + "/postgres?sslmode=disable"
}

// addr is where the cluster listens.
func (c *pgCluster) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)) }

// command returns a command of the cluster's binaries, run as its owner,
// its output appended to dir/pg_ctl.log.
func (c *pgCluster) command(ctx context.Context, name string, args ...string) (*exec.Cmd, error) {
	argv := append(append(append([]string{}, c.as...), filepath.Join(c.bin, name)), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	out, err := os.OpenFile(filepath.Join(c.dir, "pg_ctl.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	// Files, not buffers: the server started by pg_ctl must not hold a
	// pipe that Wait would wait for.
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = childEnv()
	return cmd, nil
}

// run runs one of the cluster's binaries and waits for it.
func (c *pgCluster) run(ctx context.Context, name string, args ...string) error {
	cmd, err := c.command(ctx, name, args...)
	if err != nil {
		return err
	}
	defer cmd.Stdout.(*os.File).Close()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w (see %s)", name, strings.Join(args, " "), err, filepath.Join(c.dir, "pg_ctl.log"))
	}
	return nil
}

// init creates the cluster with trust authentication.
func (c *pgCluster) init(ctx context.Context) error {
	if err := checkPortFree(c.port); err != nil {
		return err
	}
	for _, d := range []string{c.data(), c.runDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if c.uid >= 0 {
			if err := os.Chown(d, c.uid, c.gid); err != nil {
				return err
			}
		}
	}
	return c.run(ctx, "initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
}

// start starts the server and waits until it accepts connections.
func (c *pgCluster) start(ctx context.Context) error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", c.port, c.runDir())
	return c.run(ctx, "pg_ctl", "-D", c.data(), "-l", filepath.Join(c.runDir(), "postgres.log"), "-o", opts, "-w", "-t", "60", "start")
}

// stop stops the server with the given pg_ctl shutdown mode (fast,
// immediate) and waits until it has.
func (c *pgCluster) stop(ctx context.Context, mode string) error {
	return c.run(ctx, "pg_ctl", "-D", c.data(), "-m", mode, "-w", "-t", "60", "stop")
}

// redisServer is the harness's own Redis, without persistence, on a
// loopback port.
type redisServer struct {
	dir  string
	port int
	pids pidDir
	proc *child
}

// addr is where the server listens.
func (r *redisServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// start starts redis-server and waits until its port accepts connections.
func (r *redisServer) start(ctx context.Context) error {
	if err := checkPortFree(r.port); err != nil {
		return err
	}
	out, err := os.OpenFile(filepath.Join(r.dir, "redis.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	cmd.Stdout, cmd.Stderr, cmd.Env = out, out, childEnv()
	if r.proc, err = startChild(cmd, "redis", r.pids); err != nil {
		return err
	}
	return waitDial(ctx, r.addr(), r.proc, 10*time.Second)
}

// stop stops redis-server (SIGTERM; it saves nothing).
func (r *redisServer) stop() {
	if r.proc != nil {
		r.proc.stop(syscall.SIGTERM, 5*time.Second)
		r.proc = nil
	}
}

// waitDial waits until addr accepts a TCP connection, failing if proc
// exits or timeout passes first.
func waitDial(ctx context.Context, addr string, proc *child, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if !proc.alive() {
			return fmt.Errorf("%s exited before listening on %s", proc.name, addr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not listen on %s after %s", proc.name, addr, timeout)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}
