package compose

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exactTag is an image reference pinned to an exact release: a tag with a
// full major.minor.patch version (PostgreSQL's releases are major.minor
// since 10), a suffix such as -alpine or -management may follow, or a
// digest. "latest", no tag, "3.13" and "15-alpine" float.
var exactTag = regexp.MustCompile(`^([a-z0-9./_-]+:v?\d+\.\d+\.\d+|postgres:\d+\.\d+|[a-z0-9./_-]+@sha256:[0-9a-f]{64})(-[a-z0-9.-]+)?$`)

func TestImagesArePinned(t *testing.T) {
	p := load(t)
	root := repoRoot(t)
	pulled := 0
	for _, s := range p.Services {
		if s.Build != nil {
			continue // built from deploy/Dockerfile, checked below
		}
		pulled++
		assert.Regexp(t, exactTag, s.Image, "docker-compose.yml service %s: pin its image to an exact version", s.Name)
	}
	assert.NotZero(t, pulled, "docker-compose.yml: no pulled image found")
	for _, image := range dockerfileBases(t, filepath.Join(root, "deploy/Dockerfile")) {
		assert.Regexp(t, exactTag, image, "deploy/Dockerfile: pin the base image to an exact version")
	}
	src, err := os.ReadFile(filepath.Join(root, "libs/testinfra/containers/containers.go"))
	require.NoError(t, err)
	images := regexp.MustCompile(`Image:\s*"([^"]+)"`).FindAllStringSubmatch(string(src), -1)
	assert.NotEmpty(t, images, "libs/testinfra/containers: no Image found")
	for _, m := range images {
		assert.Regexp(t, exactTag, m[1], "libs/testinfra/containers: pin the image to an exact version")
	}
}

func TestImageCheckCatchesFloatingTags(t *testing.T) {
	for _, floating := range []string{"postgres", "postgres:latest", "postgres:15-alpine", "rabbitmq:3.13-management", "alpine:3.21", "postgres:15"} {
		assert.NotRegexp(t, exactTag, floating)
	}
	for _, pinned := range []string{"postgres:15.10-alpine", "prom/prometheus:v2.55.1", "golang:1.26.8-bookworm"} {
		assert.Regexp(t, exactTag, pinned)
	}
}

// TestImageIsLabelled: the runtime stage carries the OCI labels, each from
// a build argument or a fixed value.
func TestImageIsLabelled(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy/Dockerfile"))
	require.NoError(t, err)
	text := string(b)
	runtime := text[strings.LastIndex(text, "\nFROM "):]
	for _, label := range []string{"title", "version", "revision", "source", "licenses"} {
		assert.Regexp(t, `org\.opencontainers\.image\.`+label+`="[^"]+"`, runtime, "deploy/Dockerfile's runtime stage: OCI label %s", label)
	}
	assert.Contains(t, runtime, `org.opencontainers.image.licenses="Apache-2.0"`)
}

// dockerfileBases is every FROM image of a Dockerfile, with the ARG
// defaults declared before the first FROM substituted, leaving out FROMs
// of an earlier stage.
func dockerfileBases(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	args := map[string]string{}
	stages := map[string]bool{}
	var bases []string
	argLine := regexp.MustCompile(`^ARG\s+([A-Za-z_][A-Za-z0-9_]*)=(\S+)$`)
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if m := argLine.FindStringSubmatch(line); m != nil && len(bases) == 0 {
			args[m[1]] = m[2]
		}
		fields := strings.Fields(line)
		if len(fields) < 2 || !strings.EqualFold(fields[0], "FROM") {
			continue
		}
		image := os.Expand(fields[1], func(k string) string { return args[k] })
		if !stages[image] {
			bases = append(bases, image)
		}
		if len(fields) == 4 && strings.EqualFold(fields[2], "AS") {
			stages[fields[3]] = true
		}
	}
	require.NotEmpty(t, bases, "%s: no FROM", path)
	return bases
}
