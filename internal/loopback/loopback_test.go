package loopback

import "testing"

func TestHost(t *testing.T) {
	tests := []struct {
		hostport string
		want     bool
	}{
		{"127.0.0.1", true},
		{"127.0.0.1:5000", true},
		{"127.1.2.3", true},
		{"127.255.255.254:80", true},
		{"::1", true},
		{"[::1]", true},
		{"[::1]:5000", true},
		{"::ffff:127.0.0.1", true},
		{"[::ffff:127.0.0.1]:5000", true},
		{"::1%lo", true},
		{"localhost", true},
		{"localhost:5000", true},
		{"localhost:x", true},
		{"LocalHost", true},
		{"localhost.", true},
		{"registry.localhost", true},
		{"registry.localhost:5000", true},
		{"a.b.localhost", true},

		{"", false},
		{":5000", false},
		{".localhost", false},
		{"localhost.corp.example", false},
		{"localhost.corp.example:5000", false},
		{"mylocalhost", false},
		{"notlocalhost:5000", false},
		{"127.example.com", false},
		{"127.0.0.1.example.com", false},
		{"128.0.0.1", false},
		{"0.0.0.0", false},
		{"10.0.0.5:5000", false},
		{"::", false},
		{"[::2]:5000", false},
		{"::ffff:10.0.0.1", false},
		{"registry.example.com", false},
		{"[localhost]:5000x", false},
	}
	for _, tt := range tests {
		if got := Host(tt.hostport); got != tt.want {
			t.Errorf("Host(%q) = %v, want %v", tt.hostport, got, tt.want)
		}
	}
}
