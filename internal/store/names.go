package store

import (
	"fmt"
	"strings"
)

// EncodeName turns a name that may hold any character a git ref allows
// (branch names such as "release/1.37") into one path segment that is safe
// as a file name, an S3 key part and a lock name. The mapping is injective:
// "_" is the escape character and is itself escaped, so "rel/1" and "rel_1"
// become "rel_2f1" and "rel_5f1", never the same segment. Letters, digits,
// "-" and "." (except a leading ".") are kept so the result stays readable.
func EncodeName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
			b.WriteByte(c)
		case c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "_%02x", c)
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}
