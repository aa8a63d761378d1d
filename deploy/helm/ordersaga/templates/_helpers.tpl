{{/* The release's name prefix of every object. */}}
{{- define "ordersaga.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object but the release's, which a service's selector has. */}}
{{- define "ordersaga.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/part-of: ordersaga
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Labels of an object of the whole release. */}}
{{- define "ordersaga.labels" -}}
{{ include "ordersaga.commonLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
A service's object name; called with (list $ "order-service").
*/}}
{{- define "ordersaga.name" -}}
{{- printf "%s-%s" (include "ordersaga.fullname" (index . 0)) (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* A service's selector labels; called with (list $ name). */}}
{{- define "ordersaga.selector" -}}
app.kubernetes.io/name: {{ index . 1 }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
{{- end -}}

{{/*
The enabled services, each merged over .Values.defaults, as a YAML map
name → settings (fromYaml it). Every template ranges over this: the one
list is .Values.services.
*/}}
{{- define "ordersaga.services" -}}
{{- $out := dict -}}
{{- range $name, $svc := .Values.services -}}
{{- if $svc.enabled -}}
{{- if not (regexMatch "^[a-z][a-z0-9-]*$" $name) -}}
{{- fail (printf "services.%s: a name is lower-case letters, digits and -" $name) -}}
{{- end -}}
{{- if not (has $svc.kind (list "gateway" "participant")) -}}
{{- fail (printf "services.%s.kind: want gateway or participant, not %v" $name $svc.kind) -}}
{{- end -}}
{{- if and (eq $svc.kind "participant") (not $svc.database) -}}
{{- fail (printf "services.%s.database: a participant has its own database" $name) -}}
{{- end -}}
{{- $_ := set $out $name (mergeOverwrite (deepCopy $.Values.defaults) (deepCopy $svc)) -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* A service's URL variable: order-service → ORDER_SERVICE_URL. */}}
{{- define "ordersaga.urlVar" -}}
{{- printf "%s_URL" (. | upper | replace "-" "_") -}}
{{- end -}}

{{/* The Secret a service's credentials come from; called with (list $ name svc). */}}
{{- define "ordersaga.credentialsSecret" -}}
{{- $svc := index . 2 -}}
{{- if $svc.credentials.existingSecret -}}
{{- $svc.credentials.existingSecret -}}
{{- else -}}
{{- printf "%s-credentials" (include "ordersaga.name" (list (index . 0) (index . 1))) -}}
{{- end -}}
{{- end -}}

{{/* The JWT Secret's name, empty when no key is configured. */}}
{{- define "ordersaga.jwtSecret" -}}
{{- if .Values.jwt.existingSecret -}}
{{- .Values.jwt.existingSecret -}}
{{- else if .Values.jwt.signingKey -}}
{{- printf "%s-jwt" (include "ordersaga.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The image of a service; called with (list $ name). */}}
{{- define "ordersaga.image" -}}
{{- $ := index . 0 -}}
{{- printf "%s/%s:%s" $.Values.image.repository (index . 1) (default $.Chart.AppVersion $.Values.image.tag) -}}
{{- end -}}
