package store

import "testing"

func TestEncodeNameIsInjective(t *testing.T) {
	names := []string{"rel/1", "rel_1", "rel_2f1", "master", "release-1.37", "release/1.37", ".hidden", "_", "", "a..b", "ü"}
	seen := map[string]string{}
	for _, n := range names {
		e := EncodeName(n)
		if prev, dup := seen[e]; dup {
			t.Errorf("EncodeName(%q) = EncodeName(%q) = %q", n, prev, e)
		}
		seen[e] = n
		for _, c := range e {
			if c == '/' || c == '\\' || c == 0 {
				t.Errorf("EncodeName(%q) = %q holds a separator", n, e)
			}
		}
		if e == "." || e == ".." || e[0] == '.' {
			t.Errorf("EncodeName(%q) = %q is a special or hidden name", n, e)
		}
	}
	if got := EncodeName("release-1.37"); got != "release-1.37" {
		t.Errorf("EncodeName(release-1.37) = %q, want it unchanged", got)
	}
}
