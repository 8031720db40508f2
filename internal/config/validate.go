package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/distribution/reference"
)

// Test runners.
const (
	RunnerKubetest2 = "kubetest2"
	RunnerExec      = "exec"
)

// Notifier types.
const (
	NotifyFile          = "file"
	NotifyWebhook       = "webhook"
	NotifySlack         = "slack"
	NotifyEmail         = "email"
	NotifyGitHubSummary = "github-summary"
)

var notifyTypes = []string{NotifyFile, NotifyWebhook, NotifySlack, NotifyEmail, NotifyGitHubSummary}

// validate checks the meaning of the decoded, defaulted pipeline: what
// every target reads, then what each checked stage reads. Each check
// reports at the line of the key it is about.
func (p *Pipeline) validate(d *doc) {
	check := func(path, msg string) {
		if msg != "" {
			d.at(path, "%s", msg)
		}
	}
	p.validateBase(d, check)
	if p.Checked(StageBuild) || p.Checked(StageTest) {
		// The build compiles the test binaries for it; the test runs there.
		check("test.platform", checkPlatform("test.platform", p.Test.Platform))
	}
	if p.Checked(StageBuild) {
		p.validateBuild(d, check)
	}
	if p.Checked(StageTest) {
		p.validateTest(d)
	}
}

// validateBase checks what every target reads: the repositories, the
// branches, the secrets' variable names, where state, logs and images are
// kept and how many are kept (build pushes candidates, prune retains), and
// the notifiers (a conflict is notified by sync).
func (p *Pipeline) validateBase(d *doc, check func(path, msg string)) {
	upOK := false
	if p.Upstream.URL == "" {
		d.at("upstream.url", "upstream.url is required: write the repository to follow, e.g. url: https://github.com/kubernetes/kubernetes.git under upstream:")
	} else {
		msg := checkGitURL("upstream.url", p.Upstream.URL, "upstream.tokenEnv")
		check("upstream.url", msg)
		upOK = msg == ""
	}
	if p.Fork.URL != "" {
		msg := checkGitURL("fork.url", p.Fork.URL, "fork.tokenEnv")
		check("fork.url", msg)
		if msg == "" && upOK && sameRepository(p.Upstream.URL, p.Fork.URL) {
			// Sync pushes merges to the fork: pointed at upstream, it
			// would rewrite upstream's branches with the fork's carries.
			d.at("fork.url", "fork.url is the same repository as upstream.url (line %d): hyperfork pushes merged branches to fork.url, so it would rewrite upstream's branches: write the URL of your fork, or leave fork.url empty for the embedded fork",
				d.line("upstream.url"))
		}
	}
	// An empty fork.url or publish.registry is a default: left out, the
	// problem is at state.store, the key that makes the default wrong.
	if _, _, s3 := S3Location(p.State.Store); s3 && p.Fork.URL == "" {
		at, dflt := writtenOr(d, "fork.url", "state.store")
		d.at(at, "fork.url is empty%s, which keeps the fork as a bare repository in the state folder, but state.store is in S3: write fork.url, or make state.store a folder", dflt)
	}
	// Images are kept only by build and publish: a sync-only config with
	// state in S3 needs no registry.
	if _, _, s3 := S3Location(p.State.Store); s3 && p.Publish.Registry == "" && (p.Checked(StageBuild) || p.Checked(StagePublish)) {
		at, dflt := writtenOr(d, "publish.registry", "state.store")
		d.at(at, "publish.registry is empty%s, which keeps images in an OCI layout in the state folder, but state.store is in S3: write publish.registry, or make state.store a folder", dflt)
	}
	p.validateEnvNames(d)
	p.validateBranches(d)

	if p.Publish.Registry != "" {
		check("publish.registry", checkRepository("publish.registry", p.Publish.Registry))
	}
	if p.Publish.Keep < 1 {
		d.at("publish.keep", "publish.keep is %d: write 1 or more (how many stable images to keep per branch)", p.Publish.Keep)
	}
	if p.Logs.Keep < 1 {
		d.at("logs.keep", "logs.keep is %d: write 1 or more (how many test logs to keep per branch)", p.Logs.Keep)
	}
	check("state.store", checkStore("state.store", p.State.Store))
	if e := p.State.S3.Endpoint; e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			d.at("state.s3.endpoint", "state.s3.endpoint %q is not a URL: write e.g. https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:7070", e)
		} else if u.User != nil || u.RawQuery != "" {
			d.at("state.s3.endpoint", "state.s3.endpoint holds credentials or a query string: remove them; credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or web identity")
		}
	}
	if p.Publish.MaxDeletes < 0 {
		d.at("publish.maxDeletes", "publish.maxDeletes is %d: write 0 (delete nothing) or more", p.Publish.MaxDeletes)
	}
	if v, err := parseDays(p.Publish.KeepCandidates); err != nil || v <= 0 {
		d.at("publish.keepCandidates", "publish.keepCandidates %q is not a duration: write e.g. 14d or 72h", p.Publish.KeepCandidates)
	}
	if p.State.Lease < time.Second {
		d.at("state.lease", "state.lease is %s: write 1s or more, e.g. 2m (how long a lock outlives a run that died)", p.State.Lease)
	}
	if p.Test.Retries < 0 || p.Test.Retries > 5 {
		d.at("test.retries", "test.retries is %d: write 0 to 5 (how many times failed specs are rerun)", p.Test.Retries)
	}
	if p.Test.MinTests < 0 {
		d.at("test.minTests", "test.minTests is %d: write 0 (the conformance count for the version) or more", p.Test.MinTests)
	}
	if p.Test.Parallel < 1 {
		d.at("test.parallel", "test.parallel is %d: write 1 or more (how many branches are tested at the same time)", p.Test.Parallel)
	}
	if d.has("logs.store") {
		check("logs.store", checkStore("logs.store", p.Logs.Store))
	}
	p.validateNotify(d)
}

// writtenOr returns path when the file writes it, else other and
// " (default)": where to report a problem with a value, and how to say the
// file did not write it.
func writtenOr(d *doc, path, other string) (string, string) {
	if _, ok := d.lines[path]; ok {
		return path, ""
	}
	return other, " (default)"
}

// validateTest checks what the test stage reads.
func (p *Pipeline) validateTest(d *doc) {
	switch p.Test.Runner {
	case RunnerKubetest2:
		if len(p.Test.Command) > 0 {
			d.at("test.command", "test.command is used only by runner exec: remove it, or write runner: exec")
		}
	case RunnerExec:
		for _, key := range kubetest2Keys {
			if d.has(key) {
				d.at(key, "%s is used only by runner kubetest2: remove it, or write runner: kubetest2", key)
			}
		}
		if len(p.Test.Command) == 0 {
			path := "test.command"
			if !d.has(path) {
				path = "test.runner" // point at the line that asks for a command
			}
			d.at(path, `test.runner exec needs a command that writes JUnit XML into $HYPERFORK_ARTIFACTS: write e.g. command: ["./hack/e2e.sh"]`)
		}
	default:
		d.at("test.runner", "test.runner %q is unknown%s: write kubetest2 or exec", p.Test.Runner, didYouMean(p.Test.Runner, []string{RunnerKubetest2, RunnerExec}))
	}
	if p.Test.Timeout <= 0 {
		d.at("test.timeout", "test.timeout must be more than zero: write a duration such as 3h or 90m")
	}
	if p.Test.Runner == RunnerKubetest2 {
		p.validateKindPlatform(d)
		p.validateKubetest2(d)
	}
}

// kubetest2Keys are the test keys only runner kubetest2 reads.
var kubetest2Keys = []string{"test.focusRegex", "test.skipRegex", "test.ginkgoParallel",
	"test.serialFocusRegex", "test.serialSkipRegex", "test.baseImage", "test.nodeImage"}

// validateKubetest2 checks runner kubetest2's regexes and images.
func (p *Pipeline) validateKubetest2(d *doc) {
	t := p.Test
	if t.FocusRegex == "" {
		d.at("test.focusRegex", `test.focusRegex is empty: that would run every e2e test there is, disruptive ones included; write e.g. '\[Conformance\]' (the default)`)
	}
	for key, re := range map[string]string{"test.focusRegex": t.FocusRegex, "test.skipRegex": t.SkipRegex,
		"test.serialFocusRegex": t.SerialFocusRegex, "test.serialSkipRegex": t.SerialSkipRegex} {
		if _, err := regexp.Compile(re); err != nil {
			d.at(key, "%s %q is not a regular expression (RE2, as ginkgo reads it): %v", key, re, err)
		}
	}
	if t.GinkgoParallel < 1 {
		d.at("test.ginkgoParallel", "test.ginkgoParallel is %d: write 1 or more (ginkgo processes of the parallel pass)", t.GinkgoParallel)
	}
	if n := t.NodeImage; strings.Contains(n, "@") || strings.Contains(n[strings.LastIndex(n, "/")+1:], ":") {
		d.at("test.nodeImage", "test.nodeImage %q has a tag or digest: write the repository only, e.g. hyperfork/kind-node (the tag is the candidate's commit)", n)
	} else if _, err := reference.ParseNormalizedNamed(n); err != nil {
		d.at("test.nodeImage", "test.nodeImage %q is not an image repository: write e.g. hyperfork/kind-node", n)
	}
	if b := t.BaseImage; b != "" {
		if _, err := reference.ParseNormalizedNamed(b); err != nil {
			d.at("test.baseImage", "test.baseImage %q is not an image reference: write e.g. kindest/base:v20250214-acbabc1a, or leave it out for the base of the installed kind", b)
		}
	}
}

// validateKindPlatform checks that kubetest2's kind cluster can run on
// test.platform: kind's nodes are linux containers that run natively, made
// from the server tarball of that platform, which only build.platforms get.
func (p *Pipeline) validateKindPlatform(d *doc) {
	tp := p.Test.Platform
	if checkPlatform("test.platform", tp) != "" {
		return // reported with the platform's own problem
	}
	at, dflt := writtenOr(d, "test.platform", "build.platforms")
	if !strings.HasPrefix(tp, "linux/") {
		d.at(at, "test.platform %s%s: runner kubetest2 runs a kind cluster, whose nodes are linux: write the linux platform of the machine that runs the tests, e.g. linux/amd64, or use runner exec", tp, dflt)
		return
	}
	for _, b := range p.Build.Platforms {
		if checkPlatform("build.platforms", b) != "" {
			return // build.platforms has its own problem; do not guess
		}
	}
	if containsPlatform(p.Build.Platforms, tp) {
		return
	}
	platforms := "build.platforms"
	if !d.has("build.platforms") {
		platforms += " (default)"
	}
	d.at(at, "test.platform %s%s is not in %s (%s): runner kubetest2 makes kind's node image from the server tarball of that platform, so the build must compile it: add %s to build.platforms, or set test.platform to the platform of the machine that runs the tests",
		tp, dflt, platforms, strings.Join(p.Build.Platforms, ", "), tp)
}

// envFields lists every *Env key of the pipeline with its value, so that
// validation and Secrets cannot miss one.
func (p *Pipeline) envFields() []struct{ path, value string } {
	out := []struct{ path, value string }{
		{"upstream.tokenEnv", p.Upstream.TokenEnv},
		{"fork.tokenEnv", p.Fork.TokenEnv},
		{"publish.usernameEnv", p.Publish.UsernameEnv},
		{"publish.passwordEnv", p.Publish.PasswordEnv},
	}
	for i, n := range p.Notify {
		base := indexPath("notify", i)
		out = append(out,
			struct{ path, value string }{base + ".urlEnv", n.URLEnv},
			struct{ path, value string }{base + ".secretEnv", n.SecretEnv},
			struct{ path, value string }{base + ".usernameEnv", n.UsernameEnv},
			struct{ path, value string }{base + ".passwordEnv", n.PasswordEnv},
			struct{ path, value string }{base + ".tokenEnv", n.TokenEnv},
		)
	}
	return out
}

func (p *Pipeline) validateEnvNames(d *doc) {
	for _, f := range p.envFields() {
		root, _, _ := strings.Cut(f.path, ".")
		root, _, _ = strings.Cut(root, "[")
		example := strings.ToUpper("HYPERFORK_" + root + "_" + strings.TrimSuffix(lastKey(f.path), "Env"))
		if msg := checkEnvName(f.path, f.value, example); msg != "" {
			d.at(f.path, "%s", msg)
		}
	}
}

func (p *Pipeline) validateBranches(d *doc) {
	if len(p.Branches) == 0 && !d.has("branches") {
		d.at("branches", "branches is missing: list at least one fork branch, e.g. branches: [{name: master}]")
		return
	}
	if len(p.Branches) == 0 {
		d.at("branches", "branches is empty: list at least one fork branch, e.g. branches: [{name: master}]")
		return
	}
	seen := map[string]int{}
	for i, b := range p.Branches {
		base := indexPath("branches", i)
		if msg := checkRefName(base+".name", b.Name); msg != "" {
			d.at(base+".name", "%s", msg)
		} else if prev, dup := seen[b.Name]; dup {
			d.at(base+".name", "branch %q is listed twice, on lines %d and %d: keep one entry per fork branch",
				b.Name, d.line(indexPath("branches", prev)+".name"), d.line(base+".name"))
		} else {
			seen[b.Name] = i
		}
		if b.Upstream != b.Name || d.has(base+".upstream") {
			if msg := checkRefName(base+".upstream", b.Upstream); msg != "" {
				d.at(base+".upstream", "%s", msg)
			}
		}
		if b.Strategy != StrategyMerge && b.Strategy != StrategyFFOnly {
			d.at(base+".strategy", "%s.strategy %q is unknown%s: write merge or ff-only", base, b.Strategy,
				didYouMean(string(b.Strategy), []string{string(StrategyMerge), string(StrategyFFOnly)}))
		}
	}
}

// validateBuild checks what the build stage reads, but the image
// definitions, which loadImages reads.
func (p *Pipeline) validateBuild(d *doc, check func(path, msg string)) {
	b := p.Build
	for k := range b.Env {
		if !envNameRE.MatchString(k) {
			d.at(joinPath("build.env", k), "build.env key %q must be an environment variable name (upper case letters, digits and _), e.g. GOFLAGS", k)
		}
	}
	if b.BuildKit != "" {
		check("build.buildkit", checkBuildKit("build.buildkit", b.BuildKit))
	}
	for plat, addr := range b.BuildKitByPlatform {
		path := joinPath("build.buildkitByPlatform", plat)
		if !slices.Contains(b.Platforms, plat) {
			platforms := "build.platforms"
			if !d.has("build.platforms") {
				platforms += " (default: " + strings.Join(b.Platforms, ", ") + ")"
			}
			d.at(path, "build.buildkitByPlatform names %q, which is not in %s: add it there or remove this line", plat, platforms)
		}
		check(path, checkBuildKit(path, addr))
	}
	if t := b.BuildKitTLS; t != nil {
		for key, f := range map[string]string{"ca": t.CA, "cert": t.Cert, "key": t.Key} {
			if f == "" {
				continue
			}
			if _, err := os.Stat(p.resolve(f)); err != nil {
				d.at("build.buildkitTLS."+key, "build.buildkitTLS.%s: cannot read %s: write the path of the PEM file (relative to the config file)", key, f)
			}
		}
		if (t.Cert == "") != (t.Key == "") {
			d.at("build.buildkitTLS", "build.buildkitTLS: cert and key go together: set both or neither")
		}
	}
	check("build.builderImage", checkImageRef("build.builderImage", b.BuilderImage, false))
	if b.GoProxy != "" {
		check("build.goproxy", checkGoProxy("build.goproxy", b.GoProxy))
	}
	checkList(d, "build.platforms", b.Platforms, "a platform, e.g. [linux/amd64]", checkPlatform)
	checkList(d, "build.targets", b.Targets, "a Go command, e.g. [./cmd/kubelet]", checkTarget)
	names := map[string]int{}
	for i, t := range b.Targets {
		if prev, dup := names[BinaryName(t)]; dup && b.Targets[prev] != t {
			d.at(indexPath("build.targets", i), "build.targets %q and %q both build a binary named %q: keep one", b.Targets[prev], t, BinaryName(t))
		}
		names[BinaryName(t)] = i
	}
	p.validateTestBinaries(d)
	for i, f := range b.LDFlags {
		path := indexPath("build.ldflags", i)
		if _, err := renderTemplate(f, StampData{}); err != nil {
			d.at(path, "%s is not a valid template (%v): use only {{.Version}}, {{.Commit}}, {{.TreeState}} and {{.BuildDate}}", path, err)
		}
	}
	checkList(d, "build.images", b.Images, "an image file, e.g. [images/hyperkube.yaml]", func(path, v string) string {
		if strings.Contains(v, "://") {
			return fmt.Sprintf("%s %q: write the path of an image definition file, relative to this file", path, v)
		}
		return ""
	})
}

// validateTestBinaries checks build.testTargets and build.testCommands:
// package paths like build.targets, and every binary compiled for
// test.platform named once. Both may be written empty: no test binaries.
func (p *Pipeline) validateTestBinaries(d *doc) {
	b := p.Build
	if len(b.TestTargets) > 0 {
		checkList(d, "build.testTargets", b.TestTargets, "", func(path, v string) string {
			if msg := checkTarget(path, v); msg != "" {
				return msg
			}
			if i := strings.LastIndex(v, "/"); i > 0 && strings.HasSuffix(v, testSuffix) {
				// Kubernetes' make WHAT= names the binary; this key names the package.
				return fmt.Sprintf("%s %q: write the test package, %s; go test -c names its binary %s",
					path, v, v[:i], BinaryName(v))
			}
			return ""
		})
	}
	if len(b.TestCommands) > 0 {
		checkList(d, "build.testCommands", b.TestCommands, "", checkTarget)
	}
	// Every binary compiled for test.platform goes into one folder, where
	// build.targets' binaries are too when it is a build platform.
	type made struct{ list, entry string }
	owner := map[string]made{} // binary name -> the entry that makes it
	for _, t := range b.Targets {
		owner[BinaryName(t)] = made{"build.targets", t}
	}
	claim := func(path, entry, name string) {
		list := parentPath(path)
		prev, dup := owner[name]
		switch {
		case d.bad[path] || (dup && prev == made{list, entry}):
			// reported already: a bad path, or the same entry twice
		case dup:
			d.at(path, "%s %q and %s %q both make a binary named %q: keep one", prev.list, prev.entry, list, entry, name)
		default:
			owner[name] = made{list, entry}
		}
	}
	for i, t := range b.TestTargets {
		claim(indexPath("build.testTargets", i), t, TestBinaryName(t))
	}
	for i, c := range b.TestCommands {
		claim(indexPath("build.testCommands", i), c, BinaryName(c))
	}
}

// checkList reports an empty list written in the file, duplicates, and each
// element check rejects.
func checkList(d *doc, path string, list []string, what string, check func(path, v string) string) {
	if len(list) == 0 && d.has(path) {
		d.at(path, "%s is empty: list at least %s", path, what)
	}
	seen := map[string]bool{}
	for i, v := range list {
		p := indexPath(path, i)
		if seen[v] {
			d.at(p, "%s lists %q twice: remove this one", path, v)
			continue
		}
		seen[v] = true
		if msg := check(p, v); msg != "" {
			d.at(p, "%s", msg)
			d.bad[p] = true // later checks skip what is already reported
		}
	}
}

func (p *Pipeline) validateNotify(d *doc) {
	for i, n := range p.Notify {
		base := indexPath("notify", i)
		need := func(key, value, example string) {
			if value == "" {
				d.at(base+"."+key, "%s: type %s needs %s: write e.g. %s: %s", base, n.Type, key, key, example)
			}
		}
		unused := func(key string, set bool) {
			if set {
				d.at(base+"."+key, "%s.%s is not used by type %s: remove it", base, key, n.Type)
			}
		}
		switch n.Type {
		case NotifyFile:
			need("dir", n.Dir, "notifications")
		case NotifyWebhook:
			need("urlEnv", n.URLEnv, "HYPERFORK_WEBHOOK_URL")
		case NotifySlack:
			switch {
			case n.URLEnv == "" && n.TokenEnv == "":
				d.at(base, "%s: type slack needs urlEnv (an incoming webhook) or tokenEnv and channel (an app's bot token, which can also upload the test log): write e.g. urlEnv: SLACK_WEBHOOK_URL", base)
			case n.URLEnv != "" && n.TokenEnv != "":
				d.at(base+".tokenEnv", "%s: type slack takes urlEnv (an incoming webhook) or tokenEnv (a bot token), not both: remove one", base)
			case n.TokenEnv != "":
				need("channel", n.Channel, `"#builds"`)
			case n.Channel != "":
				d.at(base+".channel", "%s.channel is used only with tokenEnv (a bot token); an incoming webhook posts to its own channel: remove channel, or replace urlEnv with tokenEnv", base)
			}
		case NotifyEmail:
			need("smtp", n.SMTP, "smtp.example.com:587")
			need("from", n.From, "hyperfork@example.com")
			if len(n.To) == 0 {
				d.at(base+".to", "%s: type email needs to: write e.g. to: [platform-team@example.com]", base)
			}
			p.validateEmail(d, base, n)
		case NotifyGitHubSummary:
		case "":
			d.at(base, "%s has no type: write type: and one of %s", base, strings.Join(notifyTypes, ", "))
			continue
		default:
			d.at(base+".type", "%s.type %q is unknown%s: write one of %s", base, n.Type, didYouMean(n.Type, notifyTypes), strings.Join(notifyTypes, ", "))
			continue
		}
		slack, email := n.Type == NotifySlack, n.Type == NotifyEmail
		unused("dir", n.Dir != "" && n.Type != NotifyFile)
		unused("urlEnv", n.URLEnv != "" && n.Type != NotifyWebhook && !slack)
		unused("secretEnv", n.SecretEnv != "" && n.Type != NotifyWebhook)
		unused("tokenEnv", n.TokenEnv != "" && !slack)
		unused("channel", n.Channel != "" && !slack)
		unused("smtp", n.SMTP != "" && !email)
		unused("from", n.From != "" && !email)
		unused("to", len(n.To) > 0 && !email)
		unused("usernameEnv", n.UsernameEnv != "" && !email)
		unused("passwordEnv", n.PasswordEnv != "" && !email)
		unused("maxAttachment", n.MaxAttachment != "" && !email)
	}
}

// validateEmail checks the values of an email notifier: the server as
// host:port, the addresses, the login as a pair, the attachment size.
func (p *Pipeline) validateEmail(d *doc, base string, n Notifier) {
	switch {
	case n.SMTP == "":
	case strings.Contains(n.SMTP, "@") || strings.Contains(n.SMTP, "://"):
		if strings.Contains(n.SMTP, "@") {
			d.at(base+".smtp", "%s.smtp has credentials written inline (not repeated here): write host:port and set usernameEnv and passwordEnv", base)
		} else {
			d.at(base+".smtp", "%s.smtp must be host:port, without a scheme: write e.g. smtp.example.com:587", base)
		}
	default:
		host, port, err := net.SplitHostPort(n.SMTP)
		if err != nil && strings.Contains(err.Error(), "missing port") {
			host, port, err = n.SMTP, "587", nil
		}
		if pn, perr := strconv.Atoi(port); err != nil || perr != nil || pn < 1 || pn > 65535 || host == "" {
			d.at(base+".smtp", "%s.smtp %q is not host:port: write e.g. smtp.example.com:587 (STARTTLS) or smtp.example.com:465 (TLS)", base, n.SMTP)
		}
	}
	if n.From != "" {
		if _, err := mail.ParseAddress(n.From); err != nil {
			d.at(base+".from", "%s.from %q is not a mail address: write e.g. hyperfork@example.com or \"Hyperfork <hyperfork@example.com>\"", base, n.From)
		}
	}
	for j, to := range n.To {
		if _, err := mail.ParseAddress(to); err != nil {
			d.at(indexPath(base+".to", j), "%s.to[%d] %q is not a mail address: write e.g. platform-team@example.com", base, j, to)
		}
	}
	if (n.UsernameEnv == "") != (n.PasswordEnv == "") {
		missing := "passwordEnv"
		if n.UsernameEnv == "" {
			missing = "usernameEnv"
		}
		d.at(base+"."+missing, "%s: an SMTP login needs both usernameEnv and passwordEnv: add %s, or remove the other for a server without AUTH", base, missing)
	}
	if n.MaxAttachment != "" {
		if _, err := parseByteSize(n.MaxAttachment); err != nil {
			d.at(base+".maxAttachment", "%s.maxAttachment %q %s: write e.g. 5MiB, 512KiB or 10MB", base, n.MaxAttachment, err)
		}
	}
}

var byteSizeRE = regexp.MustCompile(`^([0-9]+)\s*([KMG]i?B|B)?$`)

// parseByteSize reads a size such as 5MiB, 512KiB, 10MB or 1048576 (bytes).
func parseByteSize(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	m := byteSizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, errors.New("is not a size")
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("must be a positive size")
	}
	unit := map[string]int64{"": 1, "B": 1, "KB": 1e3, "KiB": 1 << 10, "MB": 1e6, "MiB": 1 << 20, "GB": 1e9, "GiB": 1 << 30}[m[2]]
	if n > (1<<40)/unit {
		return 0, errors.New("is too large")
	}
	return n * unit, nil
}

// StampData is what the build.ldflags templates can use.
type StampData struct {
	Version   string // e.g. v1.34.1-hyperfork.3+abcdef012345
	Commit    string // the full commit hash
	TreeState string // "clean" or "dirty"
	BuildDate string // RFC 3339, UTC
}

// RenderLDFlags executes each build.ldflags template against data.
func RenderLDFlags(flags []string, data StampData) ([]string, error) {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		s, err := renderTemplate(f, data)
		if err != nil {
			return nil, fmt.Errorf("build.ldflags %q: %w", f, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func renderTemplate(text string, data StampData) (string, error) {
	t, err := template.New("ldflags").Option("missingkey=error").Parse(text)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	if err := t.Execute(&sb, data); err != nil {
		return "", err
	}
	return sb.String(), nil
}
