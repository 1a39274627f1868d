package harness

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// RabbitMQServerScript is the script of Debian's rabbitmq-server package
// that runs the broker in the foreground (/usr/sbin/rabbitmq-server is a
// wrapper that switches to the rabbitmq user and its directories).
const RabbitMQServerScript = "/usr/lib/rabbitmq/bin/rabbitmq-server"

// rabbitReadyTimeout bounds a RabbitMQ start-up.
const rabbitReadyTimeout = 2 * time.Minute

// RabbitMQ is a RabbitMQ node started by [StartRabbitMQ] with its own epmd,
// everything on loopback and in a temp dir removed by Stop.
type RabbitMQ struct {
	URI string // amqp://guest:guest@127.0.0.1:port/
	// StartUp is the time from starting the node to the first completed
	// AMQP handshake (epmd, started before, excluded).
	StartUp time.Duration
	dir     string
	epmd    *exec.Cmd
	node    *exec.Cmd
	done    chan struct{} // closed when the node's script has exited
}

// RabbitMQInstalled says why RabbitMQ cannot be started here, nil if it can.
func RabbitMQInstalled() error {
	if _, err := os.Stat(RabbitMQServerScript); err != nil {
		return fmt.Errorf("RabbitMQ is not installed (%w): apt-get install rabbitmq-server", err)
	}
	if _, err := exec.LookPath("epmd"); err != nil {
		return fmt.Errorf("epmd not found: %w", err)
	}
	return nil
}

// StartRabbitMQ starts epmd and a RabbitMQ node with no plugins on free
// loopback ports (AMQP, distribution and epmd), data, logs and Erlang cookie
// in a temp dir, and waits until an AMQP connection succeeds. Both processes
// get SIGKILL if this one dies.
func StartRabbitMQ(ctx context.Context) (*RabbitMQ, error) {
	if err := RabbitMQInstalled(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "millrace-bench-rabbitmq-")
	if err != nil {
		return nil, err
	}
	r := &RabbitMQ{dir: dir, done: make(chan struct{})}
	fail := func(err error) (*RabbitMQ, error) {
		r.Stop()
		return nil, err
	}
	for _, sub := range []string{"home", "mnesia", "log"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return fail(err)
		}
	}
	plugins, envFile := filepath.Join(dir, "enabled_plugins"), filepath.Join(dir, "rabbitmq-env.conf")
	if err := os.WriteFile(plugins, []byte("[].\n"), 0o600); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(envFile, nil, 0o600); err != nil {
		return fail(err)
	}
	var ports [3]int // epmd, AMQP, distribution
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return fail(err)
		}
	}
	r.epmd = exec.Command("epmd", "-address", "127.0.0.1", "-port", strconv.Itoa(ports[0]))
	r.epmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.epmd.Start(); err != nil {
		return fail(fmt.Errorf("start epmd: %w", err))
	}
	if err := waitListening(ctx, ports[0], 10*time.Second); err != nil {
		return fail(fmt.Errorf("epmd: %w", err))
	}
	r.URI = fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", ports[1])
	r.node = exec.Command(RabbitMQServerScript)
	r.node.Env = append(os.Environ(),
		"HOME="+filepath.Join(dir, "home"), // the Erlang cookie
		"RABBITMQ_CONF_ENV_FILE="+envFile,
		"RABBITMQ_NODENAME=millrace-bench-"+strconv.Itoa(os.Getpid())+"-"+strconv.Itoa(ports[1])+"@localhost",
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(ports[1]),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(ports[2]),
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_EPMD_PORT="+strconv.Itoa(ports[0]),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+plugins,
	)
	out, err := os.Create(filepath.Join(dir, "node.out"))
	if err != nil {
		return fail(err)
	}
	defer out.Close()
	r.node.Stdout, r.node.Stderr = out, out
	// A process group of its own, so that Stop can kill beam.smp too.
	r.node.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	t0 := time.Now()
	if err := r.node.Start(); err != nil {
		return fail(fmt.Errorf("start %s: %w", RabbitMQServerScript, err))
	}
	go func() { r.node.Wait(); close(r.done) }()
	if err := r.waitReady(ctx); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "node.out"))
		return fail(fmt.Errorf("RabbitMQ: %w\n%s", err, log))
	}
	r.StartUp = time.Since(t0)
	return r, nil
}

// waitReady dials AMQP until a connection succeeds, the node exits or
// rabbitReadyTimeout passes.
func (r *RabbitMQ) waitReady(ctx context.Context) error {
	return pollUntil(ctx, rabbitReadyTimeout, r.done, "the node exited", func() bool {
		c, err := amqp091.DialConfig(r.URI, amqp091.Config{Dial: amqp091.DefaultDial(time.Second)})
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// Pids are the processes of the broker: the node's script (whose
// descendants are beam.smp and its helpers) and epmd.
func (r *RabbitMQ) Pids() []int { return []int{r.node.Process.Pid, r.epmd.Process.Pid} }

// Stop stops the node (SIGTERM, which the script turns into a clean
// shutdown; SIGKILL to the process group after 30s), then epmd, and
// removes the temp dir. It is safe to call more than once.
func (r *RabbitMQ) Stop() {
	if r.node != nil && r.node.Process != nil {
		r.node.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			syscall.Kill(-r.node.Process.Pid, syscall.SIGKILL)
			<-r.done
		}
	}
	if r.epmd != nil && r.epmd.Process != nil {
		r.epmd.Process.Kill()
		r.epmd.Wait()
	}
	os.RemoveAll(r.dir)
}

// waitListening waits until something accepts TCP connections on the
// loopback port.
func waitListening(ctx context.Context, port int, timeout time.Duration) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	err := pollUntil(ctx, timeout, nil, "", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	if err != nil {
		return fmt.Errorf("nothing listens on %s: %w", addr, err)
	}
	return nil
}
