package gitfixture

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// upstreamFilesPerCommit matches GenSpec's default FilesPerCommit.
const upstreamFilesPerCommit = 3

// AppendUpstream adds n commits to branch of the bare repository dir (as
// made by Generate), each modifying a few files. Quiet files are never
// touched, so a fork made by GenerateFork still merges the result cleanly.
// The changes are a function of the branch head, so the same call on the
// same repository yields the same hashes.
func AppendUpstream(ctx context.Context, dir, branch string, n int) error {
	err := appendCommits(ctx, dir, branch, n, func(a *appendState, k int) (string, map[string][]byte) {
		rev := fmt.Sprintf("upstream %s+%d", a.head[:12], k+1)
		mods := make(map[string][]byte)
		for range upstreamFilesPerCommit {
			var p string
			if len(a.loud) == 0 {
				p = fmt.Sprintf("upstream/%s-%03d.go", a.head[:8], k)
			} else {
				p = a.loud[a.rng.IntN(len(a.loud))]
			}
			mods[p] = genContent(p, rev)
		}
		return fmt.Sprintf("Upstream change %s+%d on %s", a.head[:12], k+1, branch), mods
	})
	if err != nil {
		return fmt.Errorf("append %d upstream commits to %s in %s: %w", n, branch, dir, err)
	}
	return nil
}

// AddCarries adds n fork-only commits ("carries") to branch of the bare
// repository dir, each modifying one quiet file: a file that Generate and
// AppendUpstream never change after adding it, so merging upstream into
// the branch later never conflicts. A tree without quiet files gets new
// files under hyperfork/ instead, which upstream cannot touch either.
func AddCarries(ctx context.Context, dir, branch string, n int) error {
	err := appendCommits(ctx, dir, branch, n, func(a *appendState, k int) (string, map[string][]byte) {
		var p string
		if len(a.quiet) == 0 {
			p = fmt.Sprintf("hyperfork/%s/carry-%s-%03d.go", branch, a.head[:8], k)
		} else {
			p = a.quiet[a.rng.IntN(len(a.quiet))]
		}
		rev := fmt.Sprintf("carry %s %s+%d", branch, a.head[:12], k+1)
		return fmt.Sprintf("Carry %d on %s: patch %s", k+1, branch, p), map[string][]byte{p: genContent(p, rev)}
	})
	if err != nil {
		return fmt.Errorf("add %d carries to %s in %s: %w", n, branch, dir, err)
	}
	return nil
}

// GenerateFork makes fork a bare clone of the bare repository upstream
// (local, so objects are hard-linked and the clone takes milliseconds) and
// adds `carries` carries to every branch, as AddCarries does. The result is
// a fork whose branches are upstream's plus their own patches, ready for
// AppendUpstream on upstream and a sync.
func GenerateFork(ctx context.Context, upstream, fork string, carries int) error {
	if _, err := gitCtx(ctx, "", nil, "clone", "-q", "--bare", upstream, fork); err != nil {
		return fmt.Errorf("generate fork %s of %s: %w", fork, upstream, err)
	}
	out, err := gitCtx(ctx, fork, nil, "for-each-ref", "--format=%(refname:short)", "refs/heads/")
	if err != nil {
		return fmt.Errorf("generate fork %s: %w", fork, err)
	}
	for _, b := range strings.Fields(out) {
		if err := AddCarries(ctx, fork, b, carries); err != nil {
			return fmt.Errorf("generate fork %s: %w", fork, err)
		}
	}
	return nil
}

// appendState is what a commit generator needs to know about the branch.
type appendState struct {
	head  string
	loud  []string // paths upstream may change
	quiet []string // paths only carries change
	rng   *rand.Rand
}

// appendCommits streams n commits on top of branch into fast-import; next
// returns the message and modifications of the k-th one.
func appendCommits(ctx context.Context, dir, branch string, n int, next func(*appendState, int) (string, map[string][]byte)) error {
	if n < 0 {
		return fmt.Errorf("negative commit count %d", n)
	}
	ref := "refs/heads/" + branch
	head, err := gitCtx(ctx, dir, nil, "rev-parse", "--verify", ref+"^{commit}")
	if err != nil {
		return err
	}
	when, err := commitTime(ctx, dir, head)
	if err != nil {
		return err
	}
	files, err := gitCtx(ctx, dir, nil, "ls-tree", "-r", "-z", "--name-only", head)
	if err != nil {
		return err
	}
	seed, err := strconv.ParseUint(head[:16], 16, 64)
	if err != nil {
		return fmt.Errorf("seed from %s: %w", head, err)
	}
	a := &appendState{head: head, rng: rand.New(rand.NewPCG(seed, 0x6361727279))}
	for _, p := range strings.Split(files, "\x00") {
		switch {
		case p == "":
		case isQuiet(p):
			a.quiet = append(a.quiet, p)
		default:
			a.loud = append(a.loud, p)
		}
	}
	return fastImport(ctx, dir, func(w *bufio.Writer) error {
		fw := &fiWriter{w: w}
		from := head
		for k := range n {
			msg, mods := next(a, k)
			fw.commit(ref, from, when+int64(k+1)*60, msg, mods)
			from = ""
		}
		return nil
	})
}
