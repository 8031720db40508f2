package bench

import (
	"fmt"
	"slices"
	"time"
)

// Samples are one side's times for one row, one per round, in the order
// the rounds ran.
type Samples []time.Duration

// Median is the middle time, or the mean of the two middle ones for an
// even count; 0 without samples.
func (s Samples) Median() time.Duration { return median(s) }

// Min is the shortest time; 0 without samples.
func (s Samples) Min() time.Duration {
	if len(s) == 0 {
		return 0
	}
	return slices.Min(s)
}

// Max is the longest time; 0 without samples.
func (s Samples) Max() time.Duration {
	if len(s) == 0 {
		return 0
	}
	return slices.Max(s)
}

// Spread is "min–max" for the table.
func (s Samples) Spread() string {
	return fmt.Sprintf("%s–%s", secs(s.Min()), secs(s.Max()))
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// roundOrder is the order in which the sides of a row run in round (1 for
// the first): as listed in odd rounds, reversed in even ones, so every
// side goes first as often as the others over two rounds and a warm cache
// or a busy moment favours none of them.
func roundOrder(round, sides int) []int {
	order := make([]int, sides)
	for i := range order {
		order[i] = i
		if round%2 == 0 {
			order[i] = sides - 1 - i
		}
	}
	return order
}
