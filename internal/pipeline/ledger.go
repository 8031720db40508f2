package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/hyperfork/hyperfork/internal/notify"
	"github.com/hyperfork/hyperfork/internal/store"
)

// deliveryLedger is notify's Ledger in the state store: one document per
// delivery id naming the channels that delivered it. A stage announces
// first and records that it did after, so a run killed in between announces
// again on the next run; the ledger is what makes that second announcement
// skip every channel that already has it. It lives in the state store, not
// the work folder, because the next run may be on another machine.
type deliveryLedger struct {
	st  store.Backend
	now func() time.Time
}

var _ notify.Ledger = (*deliveryLedger)(nil)

// deliveryRecord is the document of one delivery id.
type deliveryRecord struct {
	// Channels maps a channel's name to when it delivered.
	Channels map[string]time.Time `json:"channels"`
}

func deliveryKey(delivery string) string { return "notify/deliveries/" + delivery + ".json" }

// Delivered implements notify.Ledger.
func (l *deliveryLedger) Delivered(ctx context.Context, channel, delivery string) (bool, error) {
	var rec deliveryRecord
	if _, err := store.GetJSON(ctx, l.st, deliveryKey(delivery), &rec); err != nil {
		return false, fmt.Errorf("read delivery %s: %w", delivery, err)
	}
	_, ok := rec.Channels[channel]
	return ok, nil
}

// Record implements notify.Ledger, with compare-and-swap: channels deliver
// at once and each records its own entry. The message is out whatever
// stops the run, so the record is written even then.
func (l *deliveryLedger) Record(ctx context.Context, channel, delivery string) error {
	return store.UpdateJSON(context.WithoutCancel(ctx), l.st, deliveryKey(delivery), func(rec *deliveryRecord, _ bool) error {
		if _, ok := rec.Channels[channel]; ok {
			return nil
		}
		if rec.Channels == nil {
			rec.Channels = map[string]time.Time{}
		}
		rec.Channels[channel] = l.now().UTC()
		return nil
	})
}

// deliveryKeep is how long a delivery record is kept. A record matters
// only while the stage that announced may announce again: until the stage
// is recorded, normally minutes later, or after a crash the next run. A
// quarter is far beyond that, and bounds the ledger to a quarter's events.
const deliveryKeep = 90 * 24 * time.Hour

// pruneDeliveries removes the delivery records older than deliveryKeep and
// returns how many went.
func pruneDeliveries(ctx context.Context, st store.Backend, now time.Time) (int, error) {
	objs, err := st.List(ctx, "notify/deliveries/")
	if err != nil {
		return 0, fmt.Errorf("list delivery records: %w", err)
	}
	n := 0
	for _, o := range objs {
		if now.Sub(o.Time) < deliveryKeep {
			continue
		}
		if err := st.Delete(ctx, o.Key); err != nil {
			return n, fmt.Errorf("delete delivery record %s: %w", o.Key, err)
		}
		n++
	}
	return n, nil
}
