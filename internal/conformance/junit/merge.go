package junit

// Merge folds the results of the passes of one run into one, in the order
// the passes ran: for kubetest2 the parallel pass, the serial pass, then
// the pass that reran the failed specs.
//
// A spec is the same spec in two passes when its ID (classname and name) is
// equal. Ginkgo lists every spec of the suite in every pass and marks those
// its focus left out "skipped", so:
//   - an outcome that ran (passed, failed, errored) replaces a skip;
//   - a skip never replaces an outcome that ran;
//   - an outcome that ran replaces an earlier one that ran: the later pass
//     is a rerun, and the earliest outcome it replaced is kept in
//     Retried. A spec that failed and then passed is a flake (Flakes).
//
// Specs keep the position of their first appearance. Suite nodes and
// runner steps belong to their pass and are all kept, so that a failed
// "[SynchronizedBeforeSuite]" of one pass is not hidden by the next pass's
// success. Two specs with one ID in a single pass are both kept; a later
// pass replaces the last of them. The inputs are not changed; nil inputs
// are ignored.
func Merge(passes ...*Result) *Result {
	out := &Result{}
	at := map[ID]int{}
	for _, p := range passes {
		if p == nil {
			continue
		}
		out.Suites = append(out.Suites, p.Suites...)
		for id, c := range p.Retried {
			if _, ok := out.Retried[id]; !ok {
				if out.Retried == nil {
					out.Retried = map[ID]Case{}
				}
				out.Retried[id] = c
			}
		}
		seen := map[ID]int{} // specs of this pass
		for _, c := range p.Cases {
			if c.Kind != Spec {
				out.Cases = append(out.Cases, c)
				continue
			}
			id := c.ID()
			i, ok := at[id]
			if _, dup := seen[id]; !ok || dup {
				seen[id] = len(out.Cases)
				at[id] = len(out.Cases)
				out.Cases = append(out.Cases, c)
				continue
			}
			seen[id] = i
			prev := out.Cases[i]
			switch {
			case c.Status == Skipped:
				// Left out by this pass's focus.
			case prev.Status == Skipped:
				out.Cases[i] = c
			default:
				if _, ok := out.Retried[id]; !ok {
					if out.Retried == nil {
						out.Retried = map[ID]Case{}
					}
					out.Retried[id] = prev
				}
				out.Cases[i] = c
			}
		}
	}
	return out
}
