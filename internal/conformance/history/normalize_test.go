package history

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// The same failure in two runs, differing only in what changes from run to
// run, normalises to one message.
func TestNormalizeClusters(t *testing.T) {
	pairs := [][2]string{
		{
			"[FAILED] failed to get pod webserver-pod-9xk2f in namespace services-8204: Get \"https://172.18.0.3:6443/api/v1/namespaces/services-8204/pods/webserver-pod-9xk2f\": dial tcp 172.18.0.3:6443: connect: connection refused\nIn [It] at: k8s.io/kubernetes/test/e2e/network/service.go:812 @ 01/15/26 03:21:07.482\n",
			"[FAILED] failed to get pod webserver-pod-b2hzq in namespace services-17: Get \"https://172.18.0.5:41237/api/v1/namespaces/services-17/pods/webserver-pod-b2hzq\": dial tcp 172.18.0.5:41237: connect: connection refused\nIn [It] at: k8s.io/kubernetes/test/e2e/network/service.go:840 @ 02/03/26 11:02:59.001\n",
		},
		{
			"pod \"test-rollover-deployment-5b7d6c8f9d-x7k2p\" in namespace \"deployment-2291\" (uid 0f3a6e51-8b1c-4d2e-9a7f-3c5b8d9e1f20) is not ready after 300.001s",
			"pod \"test-rollover-deployment-84c6f7b9d5-qv2ww\" in namespace \"deployment-904\" (uid 8e2d1c70-4a5b-4f3e-b1d2-6c7a8b9e0f11) is not ready after 5m0.2s",
		},
		{
			"old namespace e2e-tests-kubectl-x7k2p, container 3f1c9b2a7d4e5f60718293a4b5c6d7e8f9012345abcdef0123456789abcdef01 at 2026-01-15T03:19:00.123456Z",
			"old namespace e2e-tests-kubectl-99zbn, container 0a1b2c3d4e5f60718293a4b5c6d7e8f9012345abcdef0123456789abcdef0123 at 2026-02-01T17:00:09Z",
		},
		{
			"dial tcp [fd00:10:244::5]:8080: i/o timeout; from fe80::1%eth0 via 2001:db8:0:0:0:0:0:1",
			"dial tcp [fd00:10:244:2::1a]:9376: i/o timeout; from fe80::42%eth0 via 2001:db8:0:0:0:0:0:2",
		},
		{
			"I0115 03:19:00.091823      18 util.go:453] service nodePort 31234 on hyperfork-master-1a2b3c4d-control-plane:6443 rv 284731",
			"I0203 11:00:01.5         2201 util.go:460] service nodePort 30080 on hyperfork-master-9f8e7d6c-control-plane:6443 rv 1937",
		},
		{
			"panic: boom\n\ngoroutine 123 [running]:\nk8s.io/kubernetes/test/e2e/node.f(0xc000a3e1e0)\n\tpods.go:213 +0x1c4",
			"panic: boom\n\ngoroutine 9 [running]:\nk8s.io/kubernetes/test/e2e/node.f(0xc0012f4a80)\n\tpods.go:219 +0x1d0",
		},
		{
			"LastUpdateTime:time.Date(2026, time.January, 15, 3, 20, 11, 0, time.Local) at 2026-01-15 03:20:11.5 +0000 UTC m=+12.345678",
			"LastUpdateTime:time.Date(2026, time.March, 2, 23, 0, 0, 0, time.Local) at 2026-03-02 23:00:00 +0000 UTC m=+0.5",
		},
		{"\x1b[31mred\x1b[0m 10:01:02", "\uFFFD[31mred\uFFFD[0m 23:59:59"},
	}
	for _, p := range pairs {
		a, b := Normalize(p[0]), Normalize(p[1])
		if a != b {
			t.Errorf("the same failure normalises to two messages:\n %q\n %q", a, b)
		}
	}
}

// Different failures stay different, and what carries meaning stays.
func TestNormalizeKeeps(t *testing.T) {
	tests := []struct{ in, want string }{
		{"expected 3 replicas, got 2; Replicas:2, ObservedGeneration:2", "expected 3 replicas, got 2; Replicas:2, ObservedGeneration:2"},
		{"branch release-1.34 of v1.37.2", "branch release-1.34 of v1.37.2"},
		{"std::string a::b", "std::string a::b"},
		{"deadbeef and 0xc000123456 and sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "deadbeef and 0x<hex> and <hex>"},
		{"pod webserver-pod-9xk2f in services-8204 on 10.244.1.7:80", "pod webserver-pod-<rand> in services-<n> on <ip>:<port>"},
		{"coredns-7db6d8ff4d-8x2kq is Pending", "coredns-<hash>-<rand> is Pending"},
		{"In [It] at: k8s.io/kubernetes/test/e2e/apps/job.go:317 @ 01/15/26 05:12:44.006", "In [It] at: k8s.io/kubernetes/test/e2e/apps/job.go:<n> @ <time>"},
		{"  trailing space\n\n", "trailing space"},
	}
	for _, tt := range tests {
		if got := Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q)\n = %q\nwant %q", tt.in, got, tt.want)
		}
	}
	if Normalize("connection refused") == Normalize("connection reset by peer") {
		t.Error("two failures normalise to one")
	}
}

// A message of megabytes is cut to its head, on a rune boundary.
func TestNormalizeBounds(t *testing.T) {
	huge := strings.Repeat("é failed at 10.0.0.1 ", 1<<17) // 2.6 MB
	got := Normalize(huge)
	if len(got) > maxMessage || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "é failed at <ip> ") {
		t.Errorf("%d bytes, valid %t: %.60q…", len(got), utf8.ValidString(got), got)
	}
	if got := Normalize("bad \xff bytes"); got != "bad \uFFFD bytes" {
		t.Errorf("Normalize of invalid UTF-8 = %q", got)
	}
}
