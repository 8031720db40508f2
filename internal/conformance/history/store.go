package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/hyperfork/hyperfork/internal/store"
)

// Keys of a branch's history in the state store.
func monthKey(branch, m string) string {
	return "history/" + store.EncodeName(branch) + "/" + m + ".json.gz"
}

func indexKey(branch string) string { return "history/" + store.EncodeName(branch) + "/index.json" }

// index lists the months a branch has history for, oldest first: a store
// need not be able to list its keys.
type index struct {
	Branch string   `json:"branch"`
	Months []string `json:"months"`
}

// Append records run in branch's history. It writes with compare-and-swap:
// when another runner wrote the same month meanwhile, it reads that again
// and adds run to it. Appending a run whose ID is recorded already replaces
// that record; appending the same run twice changes nothing.
func Append(ctx context.Context, s store.VersionedStore, branch string, run Run) error {
	if run.ID == "" || run.Time.IsZero() {
		return fmt.Errorf("record test run in history of %s: the run needs an ID and a time", branch)
	}
	es := entries(run) // normalising messages is the slow part: once, outside the retries
	m := monthOf(run.Time)
	// The index first: a month it lists with no document yet reads as
	// empty, but a document it does not list would be lost to Load.
	err := store.UpdateJSON(ctx, s, indexKey(branch), func(ix *index, _ bool) error {
		ix.Branch = branch
		if !slices.Contains(ix.Months, m) {
			ix.Months = append(ix.Months, m)
			slices.Sort(ix.Months)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record test run %s in history of %s: %w", run.ID, branch, err)
	}
	key := monthKey(branch, m)
	err = store.Update(ctx, s, key, func(old []byte) ([]byte, error) {
		doc := &month{Version: formatVersion, Branch: branch, Month: m}
		if old != nil {
			var err error
			if doc, err = decodeMonth(old); err != nil {
				return nil, fmt.Errorf("read %s: %w; move it aside to start the month afresh", key, err)
			}
		}
		doc.add(run, es)
		return doc.encode()
	})
	if err != nil {
		return fmt.Errorf("record test run %s in history of %s: %w", run.ID, branch, err)
	}
	return nil
}

// Load reads the newest limit runs of branch's history (all of them when
// limit is 0 or less), oldest first. A branch with no history has an empty
// one.
func Load(ctx context.Context, s store.VersionedStore, branch string, limit int) (*History, error) {
	h := &History{Branch: branch, Clusters: []string{""}}
	b, _, err := s.GetVersioned(ctx, indexKey(branch))
	if errors.Is(err, store.ErrNotFound) {
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load test history of %s: %w", branch, err)
	}
	var ix index
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, fmt.Errorf("load test history of %s: %s: %w; delete it and the months are found again as runs are recorded", branch, indexKey(branch), err)
	}
	months := slices.Clone(ix.Months)
	slices.Sort(months)
	var docs []*month
	runs := 0
	for i := len(months) - 1; i >= 0 && (limit <= 0 || runs < limit); i-- {
		key := monthKey(branch, months[i])
		b, _, err := s.GetVersioned(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load test history of %s: %w", branch, err)
		}
		doc, err := decodeMonth(b)
		if err != nil {
			return nil, fmt.Errorf("load test history of %s: %s: %w; move it aside to read the other months", branch, key, err)
		}
		docs = append(docs, doc)
		runs += len(doc.Runs)
	}
	// Oldest month first, so tests are numbered in the order they appeared.
	for i := len(docs) - 1; i >= 0; i-- {
		h.intern(docs[i])
	}
	slices.SortStableFunc(h.Runs, func(a, b Record) int { return a.Time.Compare(b.Time) })
	if limit > 0 && len(h.Runs) > limit {
		h.Runs = slices.Delete(h.Runs, 0, len(h.Runs)-limit)
	}
	return h, nil
}
