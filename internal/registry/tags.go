package registry

import (
	"errors"
	"fmt"
	"slices"
)

// ErrConflict: the destination holds something that contradicts the request,
// such as a published version tag that names another digest, or a change made
// since a retention plan was drawn up. Nothing was changed; look at what the
// message names, then run again. (It belongs with the sentinels of errors.go.)
var ErrConflict = errors.New("conflict")

// BranchTag returns the moving tag of branch: the branch name with every
// character a tag may not hold written as "-" (release/1.34 → release-1.34),
// cut to the 128 characters a tag may have. It names the newest published
// image of the branch.
func BranchTag(branch string) string {
	t := tagUnsafe.ReplaceAllString(branch, "-")
	if len(t) > maxTagLen {
		t = t[:maxTagLen]
	}
	return t
}

// PromotionTags returns the tags a tested candidate of branch at version is
// promoted with, in the order Promote writes them: the version's StableTag,
// then the branch's moving tag.
func PromotionTags(version, branch string) []string {
	return []string{StableTag(version), BranchTag(branch)}
}

// validStableTags checks the tags Promote is asked to write: valid OCI tags,
// none twice, and none a candidate tag. A candidate tag is written by
// PushCandidate only, and a stable tag never looks like one, so retention
// can tell them apart by name.
func validStableTags(tags []string) error {
	if len(tags) == 0 {
		return fmt.Errorf("no tags to promote with: give the version's tag and the branch's (PromotionTags): %w", ErrInvalid)
	}
	for i, t := range tags {
		if err := validTag(t); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if IsCandidateTag(t) {
			return fmt.Errorf("%q is a candidate tag (it starts with %q) and cannot be a stable tag: %w", t, CandidatePrefix, ErrInvalid)
		}
		if slices.Contains(tags[:i], t) {
			return fmt.Errorf("tag %q is given twice: %w", t, ErrInvalid)
		}
	}
	return nil
}

// ownedTags returns the tags of a manifest that the retention of branch may
// remove: its version tag (StableTag of its version annotation) and its
// candidate tag (CandidateTag of its branch and revision annotations), when
// the manifest is of branch and carries them. Every other tag (the moving
// tag, another branch's, one a person added) holds the manifest for ever.
func ownedTags(ann map[string]string, branch string) (version, candidate string) {
	if ann[AnnotationBranch] != branch || branch == "" {
		return "", ""
	}
	if v := ann[AnnotationVersion]; v != "" && validTag(StableTag(v)) == nil && !IsCandidateTag(StableTag(v)) {
		version = StableTag(v)
	}
	if rev := ann[AnnotationRevision]; rev != "" {
		candidate = CandidateTag(branch, rev)
	}
	return version, candidate
}
