package inventory

import "strings"

// levenshtein is the edit distance between a and b: insert, delete or
// substitute one byte, or swap two adjacent bytes, each cost 1 (the "optimal
// string alignment" variant, because swapped letters are the commonest typo:
// wroker -> worker). Inputs are field and host names, so O(n·m) is plenty.
func levenshtein(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// suggest returns the candidate closest to word, or "" when none is close
// enough to be a plausible typo. A case-insensitive exact match always wins
// (routerId -> routerID). The threshold grows with the word so that short
// names need a near-exact match and long ones tolerate a couple of slips.
func suggest(word string, candidates []string) string {
	if word == "" {
		return ""
	}
	for _, c := range candidates {
		if strings.EqualFold(c, word) {
			return c
		}
	}
	maxDist := 1 + len(word)/4
	if maxDist > 3 {
		maxDist = 3
	}
	best, bestDist := "", maxDist+1
	lw := strings.ToLower(word)
	for _, c := range candidates {
		// Long candidate lists (thousands of hosts) stay cheap: a length
		// difference alone already exceeds the threshold for most of them.
		if d := len(c) - len(word); d > maxDist || -d > maxDist {
			continue
		}
		if d := levenshtein(lw, strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// didYouMean renders a suggestion suffix for messages, or "".
func didYouMean(word string, candidates []string) string {
	if s := suggest(word, candidates); s != "" {
		return ` (did you mean "` + s + `"?)`
	}
	return ""
}
