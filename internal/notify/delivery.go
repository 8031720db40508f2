package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"time"
)

// uuidRE matches the canonical form of a UUID, in lower case.
var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// DeliveryID returns the stable delivery id of m's event: a UUID, the form
// receivers know from GitHub's X-GitHub-Delivery. It is m.ID when that is
// already a UUID, else derived from m.ID, else from m's content without its
// time and attachments. The same event therefore has the same id on every
// attempt and every run: webhooks send it as X-Hyperfork-Delivery, email
// builds its Message-ID from it, Slack shows it, the job summary marks its
// section with it, so a receiver (or a person) can drop a second copy.
func DeliveryID(m Message) string {
	if uuidRE.MatchString(m.ID) {
		return m.ID
	}
	key := m.ID
	if key == "" {
		key = contentKey(m)
	}
	sum := sha256.Sum256([]byte("hyperfork-notify\x00" + key))
	// A version 8 UUID (RFC 9562's custom form) from the hash's first 16
	// bytes: deterministic, unlike the random version 4.
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// contentKey is what identifies a message without an ID: everything but
// when it was sent and the attached logs, which differ between two runs
// that announce the same event.
func contentKey(m Message) string {
	m.Time = time.Time{}
	m.Attachments = nil
	b, err := json.Marshal(m)
	if err != nil {
		// Only a type JSON cannot encode fails, and Message has none.
		return m.Event + "\x00" + m.Branch + "\x00" + m.Title + "\x00" + m.Text
	}
	return string(b)
}
