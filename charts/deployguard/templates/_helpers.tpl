{{/* Chart name. */}}
{{- define "deployguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release name, plus the chart name unless it is already in it. */}}
{{- define "deployguard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "deployguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "deployguard.labels" -}}
helm.sh/chart: {{ include "deployguard.chart" . }}
{{ include "deployguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: deployguard
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels (immutable on the Deployment: never add to these). */}}
{{- define "deployguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "deployguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "deployguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "deployguard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Secret holding tls.crt / tls.key (and ca.crt in helm and certManager modes). */}}
{{- define "deployguard.tlsSecretName" -}}
{{- if eq .Values.certs.mode "secret" }}
{{- required "certs.secret.name is required when certs.mode=secret" .Values.certs.secret.name }}
{{- else }}
{{- printf "%s-tls" (include "deployguard.fullname" .) }}
{{- end }}
{{- end }}

{{/* DNS names the API server may use for the Service. */}}
{{- define "deployguard.serviceDNSNames" -}}
{{- $svc := include "deployguard.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $names := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) -}}
{{- $host := include "deployguard.urlHost" . -}}
{{- if and $host (not (include "deployguard.urlHostIsIP" .)) -}}
{{- $names = append $names $host -}}
{{- end -}}
{{- $names | toJson }}
{{- end }}

{{/* The host of webhooks.url without port or brackets ("" without a URL). */}}
{{- define "deployguard.urlHost" -}}
{{- with .Values.webhooks.url -}}
{{- (urlParse .).hostname -}}
{{- end -}}
{{- end }}

{{/* "true" when the host of webhooks.url is an IP address (an IP SAN, not a DNS one). */}}
{{- define "deployguard.urlHostIsIP" -}}
{{- $host := include "deployguard.urlHost" . -}}
{{- if or (regexMatch "^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$" $host) (contains ":" $host) }}true{{ end -}}
{{- end }}

{{/* IP SANs of the generated serving certificate: the host of webhooks.url when it is an IP. */}}
{{- define "deployguard.serviceIPs" -}}
{{- if include "deployguard.urlHostIsIP" . -}}
{{- list (include "deployguard.urlHost" .) | toJson -}}
{{- else -}}
[]
{{- end -}}
{{- end }}

{{- define "deployguard.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The namespaces deployguard never judges, as a JSON list: policy.excludedNamespaces (the
policy's default list when the key is absent), webhooks.excludedNamespaces and the release
namespace. This one list goes into the policy file and into every webhook entry's
namespaceSelector, so the API server never calls the webhook for a namespace the policy
would judge differently.
*/}}
{{- define "deployguard.excludedNamespaces" -}}
{{- $excluded := list }}
{{- if hasKey .Values.policy "excludedNamespaces" }}
{{- $excluded = .Values.policy.excludedNamespaces | default list }}
{{- else }}
{{- $excluded = list "kube-system" "kube-public" "kube-node-lease" }}
{{- end }}
{{- concat $excluded (.Values.webhooks.excludedNamespaces | default list) (list .Release.Namespace) | uniq | toJson }}
{{- end }}

{{/* The policy file: .Values.policy with excludedNamespaces set to deployguard.excludedNamespaces. */}}
{{- define "deployguard.policy" -}}
{{- $policy := deepCopy .Values.policy }}
{{- $_ := set $policy "excludedNamespaces" (include "deployguard.excludedNamespaces" . | fromJsonArray) }}
{{- toYaml $policy }}
{{- end }}

{{/* Whether the mutating webhook is rendered. */}}
{{- define "deployguard.mutatingEnabled" -}}
{{- if and .Values.webhooks.mutating.enabled (ne (toString (dig "goRuntime" "enabled" true .Values.policy)) "false") }}true{{ end }}
{{- end }}

{{/* namespaceSelector shared by every webhook entry. */}}
{{- define "deployguard.namespaceSelector" -}}
{{- $excluded := include "deployguard.excludedNamespaces" . | fromJsonArray }}
{{- $sel := .Values.webhooks.namespaceSelector }}
{{- with $sel.matchLabels }}
matchLabels:
  {{- toYaml . | nindent 2 }}
{{- end }}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values:
      {{- toYaml $excluded | nindent 6 }}
  {{- with $sel.matchExpressions }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* Fields common to every webhook entry. .ctx: root context; .path; .caBundle: PEM string or ""; .matchConditions: webhook-specific list. */}}
{{- define "deployguard.webhookCommon" -}}
{{- $ctx := .ctx -}}
clientConfig:
  {{- with $ctx.Values.webhooks.url }}
  url: {{ printf "%s%s" (trimSuffix "/" .) $.path | quote }}
  {{- else }}
  service:
    name: {{ include "deployguard.fullname" $ctx }}
    namespace: {{ $ctx.Release.Namespace }}
    path: {{ .path }}
    port: {{ $ctx.Values.service.port }}
  {{- end }}
  {{- if .caBundle }}
  caBundle: {{ .caBundle | b64enc }}
  {{- end }}
admissionReviewVersions: ["v1"]
sideEffects: None
timeoutSeconds: {{ $ctx.Values.webhooks.timeoutSeconds }}
matchPolicy: Equivalent
namespaceSelector:
  {{- include "deployguard.namespaceSelector" $ctx | trim | nindent 2 }}
{{- with $ctx.Values.webhooks.objectSelector }}
objectSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with concat $ctx.Values.webhooks.matchConditions .matchConditions }}
matchConditions:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Rules for the workload kinds deployguard judges. */}}
{{- define "deployguard.workloadRules" -}}
- apiGroups: [""]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources: ["pods", "replicationcontrollers"]
  scope: Namespaced
- apiGroups: ["apps"]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources: ["deployments", "statefulsets", "daemonsets", "replicasets"]
  scope: Namespaced
- apiGroups: ["batch"]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources: ["jobs", "cronjobs"]
  scope: Namespaced
{{- end }}

{{/*
CEL for the validating webhook's matchConditions: true for the requests deployguard
answers "allowed" whatever their pod spec holds, the same cases the engine skips or caps
(src/admission.rs, src/workload.rs):
  - a request it does not judge: an operation other than CREATE or UPDATE, no object, or
    no pod spec where the kind keeps it (the API server never sends these for the rules);
  - (only while policy.controllerOwnedPods.maxMode is not enforce) a controller-owned
    object, judged at most in that mode: a Pod with any ownerReferences entry whose
    controller is true; a ReplicaSet whose controller is a Deployment; a Job whose
    controller is a CronJob;
  - an UPDATE whose pod spec equals the old object's (a Pod's spec; a CronJob's
    spec.jobTemplate.spec.template.spec; spec.template.spec of the other kinds).
Every field is tested with has() before it is read, and oldObject against null, so that
no shape of request makes the expression fail (an error applies the failurePolicy).
Kinds outside the list are false: fail closed.
*/}}
{{- /*
CEL: the request comes from a user in policy.controllerOwnedPods.trustedRequesters, read
as the engine reads it (exact names; a trailing * is a prefix; no user: not trusted).
JSON string literals are CEL string literals.
*/}}
{{- define "deployguard.trustedRequesterExpression" -}}
{{- $exact := list -}}
{{- $tests := list -}}
{{- range (dig "controllerOwnedPods" "trustedRequesters" list .Values.policy) -}}
{{- if hasSuffix "*" . -}}
{{- $tests = append $tests (printf "request.userInfo.username.startsWith(%s)" (trimSuffix "*" . | toJson)) -}}
{{- else -}}
{{- $exact = append $exact . -}}
{{- end -}}
{{- end -}}
{{- if $exact -}}
{{- $tests = prepend $tests (printf "request.userInfo.username in %s" (toJson $exact)) -}}
{{- end -}}
{{- if $tests -}}
has(request.userInfo) && has(request.userInfo.username) && request.userInfo.username != '' &&
      ({{ join " ||\n       " $tests }})
{{- else -}}
false
{{- end -}}
{{- end }}

{{- define "deployguard.neverDeniesExpression" -}}
{{- $owned := ne (toString (dig "controllerOwnedPods" "maxMode" "audit" .Values.policy)) "enforce" -}}
{{- $trusted := include "deployguard.trustedRequesterExpression" . -}}
{{- $tpl := "has(O.spec) && has(O.spec.template) && has(O.spec.template.spec)" -}}
{{- $cron := "has(O.spec) && has(O.spec.jobTemplate) && has(O.spec.jobTemplate.spec) &&\n      has(O.spec.jobTemplate.spec.template) && has(O.spec.jobTemplate.spec.template.spec)" -}}
{{- $controller := "has(object.metadata) && has(object.metadata.ownerReferences) &&\n      object.metadata.ownerReferences.exists(r, has(r.controller) && r.controller == true%s)" -}}
!(request.operation in ['CREATE', 'UPDATE']) || object == null ||
(request.kind.kind == 'Pod' && (
    !has(object.spec) ||
    {{- if $owned }}
    (({{ $trusted }}) &&
      {{ printf $controller "" }}) ||
    {{- end }}
    (request.operation == 'UPDATE' && oldObject != null && has(oldObject.spec) &&
      object.spec == oldObject.spec))) ||
(request.kind.kind == 'CronJob' && (
    !({{ $cron | replace "O." "object." }}) ||
    (request.operation == 'UPDATE' && oldObject != null &&
      {{ $cron | replace "O." "oldObject." }} &&
      object.spec.jobTemplate.spec.template.spec == oldObject.spec.jobTemplate.spec.template.spec))) ||
(request.kind.kind in ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'ReplicationController', 'Job'] && (
    !({{ $tpl | replace "O." "object." }}) ||
    {{- if $owned }}
    (({{ $trusted }}) && (
      (request.kind.kind == 'ReplicaSet' && {{ printf $controller " &&\n        has(r.kind) && r.kind == 'Deployment'" }}) ||
      (request.kind.kind == 'Job' && {{ printf $controller " &&\n        has(r.kind) && r.kind == 'CronJob'" }}))) ||
    {{- end }}
    (request.operation == 'UPDATE' && oldObject != null &&
      {{ $tpl | replace "O." "oldObject." }} &&
      object.spec.template.spec == oldObject.spec.template.spec)))
{{- end }}
