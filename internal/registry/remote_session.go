package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// maxTagPages bounds how many pages a tag listing may take; a registry that
// sends more is looping.
const maxTagPages = 10000

// remoteSession is one image repository with an authenticated transport,
// so that the hundreds of requests of a retention plan share one
// authentication handshake instead of each making its own.
type remoteSession struct {
	b    *remoteBackend
	repo name.Repository
	rt   http.RoundTripper
}

// session authenticates once for image: pull, or push and delete when write.
func (b *remoteBackend) session(ctx context.Context, image string, write bool) (imageSession, error) {
	repo, err := b.imageRepo(image)
	if err != nil {
		return nil, err
	}
	auth, err := b.kc.Resolve(repo)
	if err != nil {
		return nil, b.fail("find credentials for", repo.String(), false, err)
	}
	scopes := []string{repo.Scope(transport.PullScope)}
	if write {
		scopes = []string{repo.Scope(transport.PushScope), repo.Scope("delete")}
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, baseTransport(b.r.log), scopes)
	if err != nil {
		return nil, b.fail("authenticate to", repo.String(), false, err)
	}
	return &remoteSession{b: b, repo: repo, rt: rt}, nil
}

func (s *remoteSession) options(ctx context.Context) []remote.Option {
	// rt is a *transport.Wrapper: remote uses it as it is, adding neither
	// another authentication nor another retry.
	// The writes' own retry loop gets the same schedule as the transport's.
	return []remote.Option{remote.WithTransport(s.rt), remote.WithContext(ctx), remote.WithRetryBackoff(retryBackoff),
		remote.WithRetryPredicate(retryable), remote.WithRetryStatusCodes(retryStatus...)}
}

// fail classifies err as the other registry calls do, and also takes a
// connection dropped mid-answer (which classify does not know) for what it
// is: the registry unreachable, worth a retry.
func (s *remoteSession) fail(op, object string, write bool, err error) error {
	out := s.b.fail(op, object, write, err)
	var e *Error
	if errors.As(out, &e) && e.Kind == ErrInvalid && retryable(err) {
		e.Kind, e.Hint = ErrUnreachable, "the registry dropped the connection: retry later"
	}
	return out
}

func (s *remoteSession) manifest(ctx context.Context, d v1.Hash) (rawManifest, error) {
	ref := s.repo.Digest(d.String())
	desc, err := remote.Get(ref, s.options(ctx)...)
	if err != nil {
		return rawManifest{}, s.fail("read", ref.String(), false, err)
	}
	return rawManifest{raw: desc.Manifest, mediaType: desc.MediaType, digest: desc.Digest}, nil
}

func (s *remoteSession) tagged(ctx context.Context, tag string) (*rawManifest, error) {
	ref := s.repo.Tag(tag)
	desc, err := remote.Get(ref, s.options(ctx)...)
	if err != nil {
		err = s.fail("read", ref.String(), false, err)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		return nil, err
	}
	return &rawManifest{raw: desc.Manifest, mediaType: desc.MediaType, digest: desc.Digest}, nil
}

// do sends one request of the distribution API that go-containerregistry
// has no call for.
func (s *remoteSession) do(ctx context.Context, method, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	return s.rt.RoundTrip(req)
}

func (s *remoteSession) url(path string) string {
	return (&url.URL{Scheme: s.repo.Scheme(), Host: s.repo.RegistryStr(), Path: "/v2/" + s.repo.RepositoryStr() + path}).String()
}

// blob asks HEAD /v2/<name>/blobs/<digest> and compares the length.
func (s *remoteSession) blob(ctx context.Context, desc v1.Descriptor) error {
	object := s.repo.Digest(desc.Digest.String()).String()
	resp, err := s.do(ctx, http.MethodHead, s.url("/blobs/"+desc.Digest.String()))
	if err != nil {
		return s.fail("check blob", object, false, err)
	}
	resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return s.fail("check blob", object, false, err)
	}
	if n, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64); err == nil && desc.Size > 0 && n != desc.Size {
		return &Error{Op: "check blob", Object: object, Kind: ErrNotFound, redactor: s.b.r.red,
			Hint: fmt.Sprintf("the registry holds %d bytes, the manifest names %d: push the candidate again", n, desc.Size)}
	}
	return nil
}

// tags reads GET /v2/<name>/tags/list and every page its Link headers name.
// It asks for no page size: go-containerregistry's registry, asked for n
// tags, returns n without saying that more follow, which would be a partial
// view taken for a whole one; a registry that pages on its own says so in
// Link. A page that fails, a body cut short, a tag listed twice or a Link to
// another host ends the listing with an error.
func (s *remoteSession) tags(ctx context.Context) ([]string, error) {
	object := s.repo.String()
	next := s.url("/tags/list")
	seen := map[string]bool{}
	var out []string
	for page := 1; next != ""; page++ {
		if page > maxTagPages {
			return nil, &Error{Op: "list tags of", Object: object, Kind: ErrUnreachable, redactor: s.b.r.red,
				Hint: fmt.Sprintf("the registry sent more than %d pages: its pagination loops", maxTagPages)}
		}
		op := fmt.Sprintf("list tags (page %d) of", page)
		resp, err := s.do(ctx, http.MethodGet, next)
		if err != nil {
			return nil, s.fail(op, object, false, err)
		}
		var body struct {
			Tags []string `json:"tags"`
		}
		err = transport.CheckError(resp, http.StatusOK)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&body)
			if err == nil {
				// Reading to the end is what tells a body cut short.
				_, err = io.Copy(io.Discard, resp.Body)
			}
			if err != nil {
				err = fmt.Errorf("the answer was cut short: %w", err)
			}
		}
		resp.Body.Close()
		if err != nil {
			err = s.fail(op, object, false, err)
			if page == 1 && errors.Is(err, ErrNotFound) {
				// A repository never pushed to holds no tags.
				return nil, nil
			}
			if !errors.Is(err, ErrUnreachable) && !errors.Is(err, ErrUnauthorized) {
				// A page that is not JSON is a listing cut short too:
				// worth a retry, never a partial view.
				err = &Error{Op: op, Object: object, Kind: ErrUnreachable, Err: err, redactor: s.b.r.red,
					Hint: "the listing is incomplete: retry later"}
			}
			return nil, err
		}
		for _, t := range body.Tags {
			if seen[t] {
				return nil, &Error{Op: op, Object: object, Kind: ErrUnreachable, redactor: s.b.r.red,
					Hint: fmt.Sprintf("tag %s is listed twice: the registry's pages overlap, so the listing cannot be trusted", t)}
			}
			seen[t] = true
			out = append(out, t)
		}
		next, err = nextPage(next, resp.Header.Get("Link"))
		if err != nil {
			return nil, &Error{Op: op, Object: object, Kind: ErrUnreachable, Err: err, redactor: s.b.r.red,
				Hint: "the registry's Link header cannot be followed, so the listing is incomplete"}
		}
	}
	return out, nil
}

// nextPage returns the URL of the page a Link header names as rel="next",
// resolved against the current page, or "" when there is none. A link to
// another host is refused: the credentials must not follow it.
func nextPage(current, link string) (string, error) {
	if link == "" {
		return "", nil
	}
	for part := range strings.SplitSeq(link, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
			continue
		}
		target = strings.TrimSpace(target)
		if !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
			return "", fmt.Errorf("malformed Link header %q", link)
		}
		base, err := url.Parse(current)
		if err != nil {
			return "", err
		}
		u, err := base.Parse(strings.Trim(target, "<>"))
		if err != nil {
			return "", fmt.Errorf("malformed Link header %q: %w", link, err)
		}
		if u.Host != base.Host {
			return "", fmt.Errorf("the Link header points at another host, %s", u.Host)
		}
		return u.String(), nil
	}
	return "", nil
}

func (s *remoteSession) holds(context.Context) ([]v1.Hash, error) { return nil, nil }

func (s *remoteSession) putTag(ctx context.Context, tag string, m rawManifest) error {
	ref := s.repo.Tag(tag)
	if err := remote.Put(ref, m, s.options(ctx)...); err != nil {
		return s.fail("tag "+s.repo.Digest(m.digest.String()).String()+" as", tag, true, err)
	}
	return nil
}

func (s *remoteSession) deleteTag(ctx context.Context, tag string) error {
	ref := s.repo.Tag(tag)
	if err := remote.Delete(ref, s.options(ctx)...); err != nil {
		if refusesTagDelete(err) {
			return &Error{Op: "delete tag", Object: ref.String(), Kind: ErrDenied, Err: errors.Join(errTagDeleteRefused, err),
				redactor: s.b.r.red, Hint: "this registry deletes manifests by digest only"}
		}
		if err = s.fail("delete tag", ref.String(), true, err); errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	return nil
}

func (s *remoteSession) deleteManifest(ctx context.Context, d v1.Hash) error {
	ref := s.repo.Digest(d.String())
	if err := remote.Delete(ref, s.options(ctx)...); err != nil {
		if err = s.fail("delete", ref.String(), true, err); errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	return nil
}

// deletesTags deletes a tag that cannot exist, hyperfork-probe-<random>: a
// registry that deletes tags answers 404 (or 202), one that does not answers
// as it would for a real tag (400, 405, UNSUPPORTED). Nothing changes.
func (s *remoteSession) deletesTags(ctx context.Context) error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	ref := s.repo.Tag("hyperfork-probe-" + hex.EncodeToString(b[:]))
	err := remote.Delete(ref, s.options(ctx)...)
	switch {
	case err == nil:
		return nil
	case refusesTagDelete(err):
		return errTagDeleteRefused
	}
	if err = s.fail("probe tag deletion in", s.repo.String(), true, err); errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
