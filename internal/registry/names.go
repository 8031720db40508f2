package registry

import (
	"fmt"
	"regexp"
	"strings"
)

// The OCI annotation keys hyperfork sets on every index and manifest. Retention
// orders images by AnnotationCreated, never by push time: a registry's push
// time changes when an image is copied, the commit time does not.
const (
	AnnotationRevision = "org.opencontainers.image.revision"
	AnnotationSource   = "org.opencontainers.image.source"
	AnnotationVersion  = "org.opencontainers.image.version"
	AnnotationCreated  = "org.opencontainers.image.created"
	AnnotationBranch   = "dev.hyperfork.branch"

	// AnnotationRefName is the OCI image layout's name for a tag in index.json.
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// AnnotationImage records, in the local OCI layout, which image (by its
	// images/*.yaml name) an index.json entry belongs to: one layout holds
	// every image, while a registry has one repository per image.
	AnnotationImage = "dev.hyperfork.image"
	// AnnotationBaseName and AnnotationBaseDigest record the base image a
	// manifest was built on, as the OCI image spec suggests.
	AnnotationBaseName   = "org.opencontainers.image.base.name"
	AnnotationBaseDigest = "org.opencontainers.image.base.digest"
)

// CandidatePrefix starts every candidate tag. Stable tags are Kubernetes
// version strings (they start with "v") and branch names; configuration
// validation should reject a branch whose name starts with this prefix.
const CandidatePrefix = "candidate-"

// maxTagLen is the longest tag the OCI distribution spec allows.
const maxTagLen = 128

// tagUnsafe matches every character an OCI tag may not contain.
var tagUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// tagRE is the OCI distribution spec's grammar for a tag.
var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// CandidateTag returns the tag a candidate of branch at commit is pushed
// under: "candidate-<branch>-<first 12 characters of commit>", with every
// character a tag may not hold (such as "/") written as "-". The commit makes
// the tag unique per build, so a candidate never moves and never shadows a
// stable tag.
func CandidateTag(branch, commit string) string {
	if len(commit) > 12 {
		commit = commit[:12]
	}
	b := tagUnsafe.ReplaceAllString(branch, "-")
	// Keep the commit whole when a long branch name must be cut.
	if room := maxTagLen - len(CandidatePrefix) - 1 - len(commit); len(b) > room {
		b = b[:room]
	}
	return CandidatePrefix + b + "-" + commit
}

// IsCandidateTag reports whether tag was made by CandidateTag.
func IsCandidateTag(tag string) bool { return strings.HasPrefix(tag, CandidatePrefix) }

// StableTag returns the tag for a Kubernetes version string, with "+" written
// as "_" because OCI tags forbid "+" (v1.34.1+fork.3 -> v1.34.1_fork.3).
func StableTag(version string) string { return strings.ReplaceAll(version, "+", "_") }

// validTag returns an error naming tag when it is not a valid OCI tag.
func validTag(tag string) error {
	if !tagRE.MatchString(tag) {
		return fmt.Errorf("%q is not a valid tag: use at most 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'", tag)
	}
	return nil
}
