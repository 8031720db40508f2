package reliability

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hyperfork/hyperfork/internal/conformance/history"
	"github.com/hyperfork/hyperfork/internal/notify"
	"github.com/hyperfork/hyperfork/internal/registry"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
)

// chain is a world taken through points one after the other, with what its
// releases published so far.
type chain struct {
	w         *world
	published []published
	// logs are the test logs the releases recorded, oldest first.
	logs []string
}

type published struct{ version, digest string }

// checked is the verdict on an end state.
type checked struct {
	summary  string
	problems []string
	// hookNote says the webhook got one delivery more than once.
	hookNote string
}

// check compares the world's end state after a release that exited 0 with
// what an uninterrupted release reaches from the fork head before and the
// upstream head up.
func (c *chain) check(before, up string) checked {
	w := c.w
	var res checked
	bad := func(format string, args ...any) { res.problems = append(res.problems, fmt.Sprintf(format, args...)) }

	// No fork commit lost: the carries (before) and upstream are in the
	// head, and its tree is git's merge of the two, which is what an
	// uninterrupted run pushes.
	head := w.forkHead()
	for what, c := range map[string]string{"the fork's commits": before, "upstream's commits": up} {
		if _, err := gitfixture.GitErr(w.fork.Home, w.forkBare, nil, "merge-base", "--is-ancestor", c, head); err != nil {
			bad("%s (%s) are not in the fork head %s", what, short(c), short(head))
		}
	}
	if got, want := w.tree(head), w.mergeTree(before, up); got != want {
		bad("the fork's tree %s is not the merge of %s and %s (%s)", short(got), short(before), short(up), short(want))
	}

	// The state records the head through every stage.
	bs := w.state()
	digest := afterAt(bs.Build.Image)
	switch {
	case bs.Sync.ForkCommit != head:
		bad("state: sync at %s, fork at %s", short(bs.Sync.ForkCommit), short(head))
	case bs.Build.Commit != head || bs.Build.Status != report.BuildBuilt:
		bad("state: build %s of %s, fork at %s", bs.Build.Status, short(bs.Build.Commit), short(head))
	case bs.Test.Status != report.TestPassed || bs.Test.Candidate != bs.Build.Image:
		bad("state: test %s of %s, candidate %s", bs.Test.Status, bs.Test.Candidate, bs.Build.Image)
	case bs.Publish.Status != report.PublishPublished || bs.Publish.Commit != head || bs.Publish.Image != bs.Build.Image:
		bad("state: publish %s of %s (%s)", bs.Publish.Status, short(bs.Publish.Commit), bs.Publish.Image)
	}
	if n := len(c.published); n == 0 || c.published[n-1].digest != digest {
		c.published = append(c.published, published{bs.Build.Version, digest})
	}

	// No stable tag on an untested digest; the newest publish.keep (2)
	// releases keep their tags, older ones lost theirs.
	repo, err := registry.Open(registry.Options{Ref: w.repo})
	if err != nil {
		bad("open the registry: %v", err)
		return res
	}
	entries, err := repo.List(context.Background(), "hyperkube")
	if err != nil {
		bad("list the registry: %v", err)
		return res
	}
	tested := w.tested()
	byTag := map[string]string{}
	stable := 0
	for _, e := range entries {
		var tags []string
		for _, tag := range e.Tags {
			byTag[tag] = e.Digest
			if !registry.IsCandidateTag(tag) {
				tags = append(tags, tag)
			}
		}
		if len(tags) > 0 {
			stable++
			if !tested[e.Digest] {
				bad("stable tags %v on %s, which no test passed", tags, short(e.Digest))
			}
		}
	}
	if byTag[registry.BranchTag("master")] != digest || byTag[registry.StableTag(bs.Build.Version)] != digest {
		bad("the tags master and %s are on %s and %s, not on the tested candidate %s", registry.StableTag(bs.Build.Version),
			short(byTag["master"]), short(byTag[registry.StableTag(bs.Build.Version)]), short(digest))
	}
	for i, p := range c.published {
		kept := i >= len(c.published)-2
		switch got := byTag[registry.StableTag(p.version)]; {
		case kept && got != p.digest:
			bad("kept release %s lost its tag (now on %q)", p.version, short(got))
		case !kept && got != "":
			bad("release %s, older than the 2 kept, still has its tag", p.version)
		}
	}

	// No kept log deleted: every log the state names is in logs.store;
	// older runs are pruned to logs.keep, except the current candidate's.
	objs, err := w.logs().List(context.Background(), "test/master/")
	if err != nil {
		bad("list logs.store: %v", err)
		return res
	}
	keys := map[string]bool{}
	runs := map[string]bool{}
	current := 0
	for _, o := range objs {
		keys[o.Key] = true
		run, _, _ := strings.Cut(strings.TrimPrefix(o.Key, "test/master/"), "/")
		if !runs[run] && strings.Contains(run, "-"+head[:12]+"-") {
			current++
		}
		runs[run] = true
	}
	prefix := "s3://" + w.bucket + "/logs/"
	named := []string{bs.Test.Log}
	for _, loc := range bs.Test.RunLogs {
		named = append(named, loc)
	}
	for _, loc := range named {
		if !keys[strings.TrimPrefix(loc, prefix)] {
			bad("the test log %s the state names is gone from logs.store", loc)
		}
	}
	// An uninterrupted run keeps the logs of the logs.keep (2) newest
	// recorded runs, this one and the one before.
	if n := len(c.logs); n == 0 || c.logs[n-1] != bs.Test.Log {
		c.logs = append(c.logs, bs.Test.Log)
	}
	for i, loc := range c.logs {
		kept := i >= len(c.logs)-2
		switch in := keys[strings.TrimPrefix(loc, prefix)]; {
		case kept && !in:
			bad("the kept test log %s was deleted", loc)
		case !kept && in:
			bad("the test log %s, older than the 2 kept, is still there", loc)
		}
	}
	if len(runs) > 2 && len(runs)-current > 1 {
		bad("%d test runs' logs kept (%d of the current candidate), want logs.keep = 2", len(runs), current)
	}

	// No notification lost or sent twice, per (branch, event, commit).
	files := map[string]int{}
	for _, m := range w.notifications() {
		files[m.Branch+" "+m.Event+" "+m.ForkCommit]++
	}
	for k, n := range files {
		if n > 1 {
			bad("%s announced %d times in the file channel", k, n)
		}
	}
	key := "master " + notify.EventReleasePublished + " " + head
	ids, posts := map[string]bool{}, 0
	for _, d := range w.hook.deliveries() {
		if d.branch+" "+d.event+" "+d.commit == key {
			ids[d.id] = true
			posts++
		}
	}
	if files[key] != 1 || len(ids) != 1 {
		bad("%s announced %d times in the file channel and under %d delivery ids to the webhook, want 1", key, files[key], len(ids))
	}
	if posts > 1 {
		res.hookNote = fmt.Sprintf("; the webhook got it %d times under its one delivery id (sent, not yet in the ledger: at least once)", posts)
	}

	// The test history: a run killed after its verdict was appended
	// leaves its entry beside the rerun's.
	h, err := history.Load(context.Background(), w.stateStore(), "master", 100)
	if err != nil {
		bad("read the test history: %v", err)
		return res
	}
	runsOfHead := 0
	for _, r := range h.Runs {
		if r.Commit == head {
			runsOfHead++
		}
	}
	res.summary = fmt.Sprintf("converged: fork %s holds carries and upstream, tree = git's merge; tags %s and master on tested %s; %d images and %d test logs kept; 1 notification",
		short(head), registry.StableTag(bs.Build.Version), short(digest), stable, len(runs))
	if current > 1 {
		res.summary += fmt.Sprintf(" (+%d of the killed run, same candidate, never counted, pruned after the next)", current-1)
	}
	if runsOfHead > 1 {
		res.summary += fmt.Sprintf("; history has %d runs of the commit (the killed run's verdict too)", runsOfHead)
	}
	return res
}

// tree returns a commit's tree in the served fork.
func (w *world) tree(commit string) string {
	w.t.Helper()
	out, err := gitfixture.GitErr(w.fork.Home, w.forkBare, nil, "rev-parse", commit+"^{tree}")
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return out
}

// mergeTree is git's own merge of a fork head and an upstream head, made
// in a scratch repository.
func (w *world) mergeTree(fork, up string) string {
	w.t.Helper()
	scratch := filepath.Join(w.dir, "check.git")
	if _, err := os.Stat(scratch); err != nil {
		gitfixture.Git(w.t, w.fork.Home, w.dir, "init", "-q", "--bare", scratch)
	}
	gitfixture.Git(w.t, w.fork.Home, scratch, "fetch", "-q", w.forkBare, "+refs/heads/master:refs/fork")
	gitfixture.Git(w.t, w.fork.Home, scratch, "fetch", "-q", w.upBare, "+refs/heads/master:refs/up")
	out, err := gitfixture.GitErr(w.fork.Home, scratch, nil, "merge-tree", "--write-tree", fork, up)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	tree, _, _ := strings.Cut(out, "\n")
	return tree
}

// lastUpstream is upstream's master.
func (w *world) lastUpstream() string {
	w.t.Helper()
	return gitfixture.Git(w.t, w.fork.Home, w.upBare, "rev-parse", "refs/heads/master")
}

// waitProcessesGone waits until no process names dir, and returns those
// that still do.
func waitProcessesGone(dir string, limit time.Duration) []string {
	deadline := time.Now().Add(limit)
	for {
		left := processesOf(dir)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// processesOf lists the live processes whose command line or environment
// names dir: the runs and what they started.
func processesOf(dir string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == strconv.Itoa(os.Getpid()) {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if bytes.Contains(stat, []byte(") Z ")) {
			continue // dead, not yet reaped
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		environ, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if bytes.Contains(cmdline, []byte(dir)) || bytes.Contains(environ, []byte(dir)) {
			found = append(found, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return found
}

func afterAt(ref string) string {
	_, d, _ := strings.Cut(ref, "@")
	return d
}

func short(h string) string {
	h = strings.TrimPrefix(h, "sha256:")
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
