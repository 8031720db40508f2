package pipeline_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/report"
)

// startSSH starts a real sshd on loopback that accepts only the key the
// returned ssh-agent holds, and returns its port. The agent's socket is put
// in SSH_AUTH_SOCK for the test, as a user's login shell would.
func startSSH(t *testing.T) int {
	t.Helper()
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		sshd = "/usr/sbin/sshd"
	}
	if _, err := os.Stat(sshd); err != nil {
		skipOrFail(t, "sshd is not installed: apt-get install -y openssh-server")
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "sshd on a test port needs root here")
	}
	dir := t.TempDir()
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "host_key"))
	run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "user_key"))
	pub, _ := os.ReadFile(filepath.Join(dir, "user_key.pub"))
	os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600)
	os.MkdirAll("/run/sshd", 0o755) // sshd's privilege separation folder

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile %s
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
`, port, filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"))
	os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(conf), 0o600)
	cmd := exec.Command(sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	logf, _ := os.Create(filepath.Join(dir, "sshd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	// The user's agent holds the key; hyperfork never sees it.
	sock := filepath.Join(dir, "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	for i := 0; i < 50; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	add := exec.Command("ssh-add", filepath.Join(dir, "user_key"))
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
	t.Setenv("SSH_AUTH_SOCK", sock)
	// known_hosts goes to a HOME of the test's own.
	t.Setenv("HOME", t.TempDir())
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		if i > 50 {
			b, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
			t.Fatalf("sshd did not start: %v\n%s", err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return port
}

func TestSyncOverSSHWithTheUsersAgent(t *testing.T) {
	w := newWorld(t)
	port := startSSH(t)
	w.upURL = fmt.Sprintf("ssh://root@127.0.0.1:%d%s", port, w.upBare)
	w.forkURL = fmt.Sprintf("ssh://root@127.0.0.1:%d%s", port, w.forkBare)
	w.upstreamCommit("master", "upstream: add c", map[string]string{"pkg/c.go": "package c\n"})
	code, rep, out := w.run("sync", "HYPERFORK_BRANCHES=master")
	if code != 0 || w.branch(rep, "master").Sync.Status != report.SyncMerged {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if got := w.forkHead("master"); got != w.branch(rep, "master").Sync.ForkCommit {
		t.Fatalf("fork master %s, report %s", got, w.branch(rep, "master").Sync.ForkCommit)
	}

	// Without a key in the agent: a clear authentication error, not a prompt.
	t.Setenv("SSH_AUTH_SOCK", "")
	w.upstreamCommit("master", "upstream: add d", map[string]string{"pkg/d.go": "package d\n"})
	code, rep, out = w.run("sync", "HYPERFORK_BRANCHES=master")
	if e := w.branch(rep, "master").Error; code != report.ExitFailed || !strings.Contains(e, "authentication failed") || !strings.Contains(e, "ssh-agent") {
		t.Fatalf("no agent: exit %d: %s\n%s", code, e, out)
	}
}
