package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// listeningPrefix starts the line on which apikey serve logs its address.
const listeningPrefix = "apikey: listening on http://"

// startTimeout bounds how long an instance may take to log its address.
const startTimeout = 60 * time.Second

// instance is one `apikey serve` process. Its first start binds a free
// port; later starts (after kill) bind the same one, so that clients keep
// their URL.
type instance struct {
	name string
	bin  string
	args []string // serve's flags other than --addr
	dir  string   // where its log goes
	pids pidDir

	addr string // HOST:PORT, once started
	proc *child
}

// url is the instance's base URL.
func (in *instance) url() string { return "http://" + in.addr }

// start starts the process and waits until it logs its address.
func (in *instance) start(ctx context.Context) error {
	addr := in.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	args := append([]string{"serve", "--addr", addr}, in.args...)
	cmd := exec.Command(in.bin, args...)
	cmd.Env = childEnv()
	// A pipe of our own rather than StderrPipe, which Wait (called as
	// soon as the process exits) would close under the reader.
	stderr, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.Stderr = w
	log, err := os.OpenFile(filepath.Join(in.dir, in.name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		stderr.Close()
		w.Close()
		return err
	}
	in.proc, err = startChild(cmd, in.name, in.pids)
	w.Close()
	if err != nil {
		stderr.Close()
		log.Close()
		return err
	}
	found := make(chan string, 1)
	go copyLog(log, stderr, found)
	select {
	case in.addr = <-found:
		return nil
	case <-in.proc.exited:
		return fmt.Errorf("%s exited before listening; see %s", in.name, log.Name())
	case <-time.After(startTimeout):
		in.kill()
		return fmt.Errorf("%s did not log its address within %s; see %s", in.name, startTimeout, log.Name())
	case <-ctx.Done():
		in.kill()
		return ctx.Err()
	}
}

// copyLog copies the instance's standard error to log, sending the
// address of the listening line to found, and closes log at the end.
func copyLog(log *os.File, stderr io.ReadCloser, found chan<- string) {
	defer log.Close()
	defer stderr.Close()
	r := bufio.NewReader(stderr)
	for {
		line, err := r.ReadString('\n')
		_, _ = log.WriteString(line)
		if addr, ok := strings.CutPrefix(strings.TrimSpace(line), listeningPrefix); ok {
			select {
			case found <- addr:
			default:
			}
		}
		if err != nil {
			return
		}
	}
}

// kill kills the process with SIGKILL, as a crash would, and waits for it.
func (in *instance) kill() {
	if in.proc != nil {
		in.proc.stop(syscall.SIGKILL, 0)
		in.proc = nil
	}
}

// stop stops the process gracefully (SIGTERM), killing it after 15s.
func (in *instance) stop() {
	if in.proc != nil {
		in.proc.stop(syscall.SIGTERM, 15*time.Second)
		in.proc = nil
	}
}

// createAdminKey makes an apikey:admin key with the CLI and returns its
// token.
func createAdminKey(ctx context.Context, bin, dbURL string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, "create", "--db", dbURL, "--name", "chaos", "--scope", "apikey:admin")
	cmd.Env = childEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("apikey create: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	token := strings.TrimSpace(string(out))
	if token == "" {
		return "", errors.New("apikey create printed no key")
	}
	return token, nil
}
