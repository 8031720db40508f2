package config

import (
	"fmt"
	"slices"
)

// Stage is a stage of the pipeline, named so that LoadFor checks only what
// the stages a target runs depend on: a sync must not fail because of a
// build setting it never reads.
type Stage string

// The stages, in the order release runs them.
const (
	// StageSync merges upstream into the fork. Everything it reads
	// (upstream, fork, branches, state, notify) is checked by every load,
	// so asking for it adds no check; it says what the caller runs.
	StageSync Stage = "sync"
	// StageBuild compiles and packs the images: build.* and the image
	// definitions, which are read only for it, and test.platform, which
	// the test binaries are compiled for.
	StageBuild Stage = "build"
	// StageTest runs conformance on the candidate: test.*, and with runner
	// kubetest2 that build.platforms has test.platform, whose server
	// tarball kind's node image is made from.
	StageTest Stage = "test"
	// StagePublish tags and retains images. publish.registry and the keep
	// counts are read by build (candidates are pushed there) and prune too,
	// so every load checks them; asking for it adds no check yet.
	StagePublish Stage = "publish"
)

// Stages returns every stage in the order release runs them: what Load
// checks.
func Stages() []Stage {
	return []Stage{StageSync, StageBuild, StageTest, StagePublish}
}

// Checked reports whether the configuration of stage s was validated by
// the load that returned p. Fields only that stage reads (Images for
// StageBuild) are filled only when it was.
func (p *Pipeline) Checked(s Stage) bool {
	return slices.Contains(p.stages, s)
}

// checkStages rejects a Stage that is none of the constants: a bug in the
// caller, not in the file, so it is not a *ValidationError.
func checkStages(stages []Stage) ([]Stage, error) {
	var out []Stage
	for _, s := range stages {
		if !slices.Contains(Stages(), s) {
			return nil, fmt.Errorf("config: unknown stage %q: pass StageSync, StageBuild, StageTest or StagePublish", string(s))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}
