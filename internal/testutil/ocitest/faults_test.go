package ocitest_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hyperfork/hyperfork/internal/testutil/ocitest"
)

// pushTags pushes one small image under each tag.
func pushTags(t *testing.T, host string, tags ...string) {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range tags {
		ref, err := name.ParseReference(host+"/repo:"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
}

// get fetches a path of the registry with a plain client.
func get(t *testing.T, host, path string) (*http.Response, []byte, error) {
	t.Helper()
	resp, err := http.Get("http://" + host + path)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func TestPaginate(t *testing.T) {
	host := ocitest.StartRegistryWith(t, ocitest.Paginate(2))
	pushTags(t, host, "a", "b", "c", "d", "e")
	var all []string
	path := "/v2/repo/tags/list"
	for pages := 0; path != ""; pages++ {
		resp, body, err := get(t, host, path)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %v %v", path, resp, err)
		}
		var list struct{ Tags []string }
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatal(err)
		}
		all = append(all, list.Tags...)
		path = ""
		if link := resp.Header.Get("Link"); link != "" {
			path = strings.TrimPrefix(strings.SplitN(link, ">", 2)[0], "<")
		}
		if pages > 5 {
			t.Fatal("the pages do not end")
		}
	}
	if !slices.Equal(all, []string{"a", "b", "c", "d", "e"}) {
		t.Errorf("pages gave %v", all)
	}
	// go-containerregistry's own client follows the pages.
	repo, _ := name.NewRepository(host+"/repo", name.Insecure)
	if tags, err := remote.List(repo); err != nil || len(tags) != 5 {
		t.Errorf("remote.List = %v, %v", tags, err)
	}
}

func TestFaults(t *testing.T) {
	var f ocitest.Faults
	host := ocitest.StartRegistryWith(t, f.Wrap)
	pushTags(t, host, "a", "b")

	f.Add(t, ocitest.RateLimited(`/tags/list`, 1, 2*time.Second))
	resp, _, err := get(t, host, "/v2/repo/tags/list")
	if err != nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("rate limit: %v %v", resp, err)
	}
	if resp, _, _ := get(t, host, "/v2/repo/tags/list"); resp.StatusCode != http.StatusOK {
		t.Errorf("after its one time, the fault still answers: %d", resp.StatusCode)
	}

	// Every request after the first: Go's client sends a GET again, once,
	// when a kept-alive connection closes without an answer.
	f.Add(t, ocitest.Fault{URL: `/manifests/a$`, Skip: 1, Drop: true})
	if resp, _, err := get(t, host, "/v2/repo/manifests/a"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("the skipped request: %v %v", resp, err)
	}
	if _, _, err := get(t, host, "/v2/repo/manifests/a"); err == nil {
		t.Error("the dropped request got an answer")
	}

	f.Add(t, ocitest.Fault{Method: http.MethodGet, URL: `/manifests/b$`, Times: 1, Truncate: true})
	if _, _, err := get(t, host, "/v2/repo/manifests/b"); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated answer: %v, want unexpected EOF", err)
	}

	f.Add(t, ocitest.TagDeleteRefused())
	ref, _ := name.ParseReference(host+"/repo:a", name.Insecure)
	err = remote.Delete(ref)
	if err == nil || !strings.Contains(err.Error(), "UNSUPPORTED") {
		t.Errorf("tag delete: %v, want UNSUPPORTED", err)
	}
	desc, _ := remote.Head(mustRef(t, host+"/repo:b"))
	if err := remote.Delete(mustRef(t, host+"/repo@"+desc.Digest.String())); err != nil {
		t.Errorf("digest delete went through the tag-delete fault: %v", err)
	}
	var kinds []string
	for _, q := range f.Injected() {
		if !slices.Contains(kinds, q) {
			kinds = append(kinds, q)
		}
	}
	if len(kinds) != 4 {
		t.Errorf("Injected = %v, want the four faults", f.Injected())
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestDistribution(t *testing.T) {
	host := ocitest.StartDistribution(t, ocitest.DistributionOptions{})
	pushTags(t, host, "a", "b")
	ref := mustRef(t, host+"/repo:a")
	if err := remote.Delete(ref); err != nil {
		t.Fatalf("tag delete with deletes on: %v", err)
	}
	if _, err := remote.Head(ref); err == nil {
		t.Error("the deleted tag is still there")
	}
	// Behind a proxy, with a fault: the way tests put faults in front of it.
	var f ocitest.Faults
	proxied := ocitest.Proxy(t, host, f.Wrap)
	f.Add(t, ocitest.Fault{URL: `/tags/list`, Status: http.StatusInternalServerError})
	if resp, _, err := get(t, proxied, "/v2/repo/tags/list"); err != nil || resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("proxied fault: %v %v", resp, err)
	}
	if _, err := remote.Head(mustRef(t, proxied+"/repo:b")); err != nil {
		t.Errorf("proxied read: %v", err)
	}

	off := ocitest.StartDistribution(t, ocitest.DistributionOptions{NoDelete: true})
	pushTags(t, off, "a")
	err := remote.Delete(mustRef(t, off+"/repo:a"))
	if err == nil || !strings.Contains(err.Error(), "UNSUPPORTED") {
		t.Errorf("delete with deletes off: %v, want UNSUPPORTED", err)
	}
}
