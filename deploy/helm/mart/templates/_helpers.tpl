{{/*
Names, labels and the per-component settings shared by the templates.
*/}}

{{- define "mart.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* fullname: the release name when it already says "mart", else <release>-mart. */}}
{{- define "mart.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "mart.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The subgraph services in start order (system.Targets). */}}
{{- define "mart.services" -}}
user product order inventory payment notification
{{- end -}}

{{/* Every target: the router, then the services. */}}
{{- define "mart.targets" -}}
router {{ include "mart.services" . }}
{{- end -}}

{{/* component: dict "root" $ "name" <target> → the component's values, checked. */}}
{{- define "mart.component" -}}
{{- $c := index .root.Values.components .name -}}
{{- if not $c -}}
{{- fail (printf "components.%s is missing" .name) -}}
{{- end -}}
{{- if not $c.port -}}
{{- fail (printf "components.%s.port is required" .name) -}}
{{- end -}}
{{- toYaml $c -}}
{{- end -}}

{{/* enabled: dict "root" $ "name" <target> → "true" or "". */}}
{{- define "mart.enabled" -}}
{{- $c := index .root.Values.components .name -}}
{{- if and $c (or (not (hasKey $c "enabled")) $c.enabled) -}}true{{- end -}}
{{- end -}}

{{/*
setting: dict "root" $ "c" <component values> "key" <key> → the component's
value of key when it sets one, else defaults.<key>, as YAML.
*/}}
{{- define "mart.setting" -}}
{{- if hasKey .c .key -}}
{{- toYaml (index .c .key) -}}
{{- else -}}
{{- toYaml (index .root.Values.defaults .key) -}}
{{- end -}}
{{- end -}}

{{- define "mart.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* selectorLabels: dict "root" $ "name" <target>. Never change these: selectors are immutable. */}}
{{- define "mart.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mart.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* labels: dict "root" $ "name" <target or purpose>. */}}
{{- define "mart.labels" -}}
helm.sh/chart: {{ include "mart.chart" .root }}
{{ include "mart.selectorLabels" . }}
app.kubernetes.io/part-of: mart
app.kubernetes.io/version: {{ .root.Values.image.tag | default .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{- define "mart.image" -}}
{{- $img := .Values.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository ($img.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* serviceName: dict "root" $ "name" <target>. */}}
{{- define "mart.serviceName" -}}
{{- printf "%s-%s" (include "mart.fullname" .root) .name -}}
{{- end -}}

{{/* serviceURL: dict "root" $ "name" <target> → http://<service>:<port> (same namespace). */}}
{{- define "mart.serviceURL" -}}
{{- $c := index .root.Values.components .name -}}
{{- printf "http://%s:%v" (include "mart.serviceName" .) $c.port -}}
{{- end -}}

{{- define "mart.jwksURL" -}}
{{- if .Values.auth.jwksURL -}}
{{- .Values.auth.jwksURL -}}
{{- else -}}
{{- printf "%s/.well-known/jwks.json" (include "mart.serviceURL" (dict "root" . "name" "user")) -}}
{{- end -}}
{{- end -}}

{{/*
Variables that hold secrets: they may only come from a Secret (valueFrom),
never as a plain value (env, a component's env, or a rendered value).
*/}}
{{- define "mart.secretVars" -}}
DATABASE_URL KAFKA_SASL_PASSWORD MART_SMTP_PASSWORD MART_SMS_TOKEN MART_ADMIN_PASSWORD
{{- end -}}


{{/*
env: dict "root" $ "name" <target> "c" <component values> → the container's
env list. Chart-managed variables first; then the plain env maps (global,
then component), which may not repeat a managed variable nor hold a secret;
then the raw extraEnv entries.
*/}}
{{- define "mart.env" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $name := .name -}}
{{- $c := .c -}}
{{- $isService := has $name (splitList " " (include "mart.services" $root)) -}}
{{- $managed := list -}}
{{- $out := list -}}
{{- /* shared */ -}}
{{- $plain := dict
      "MART_LOG_LEVEL" $v.log.level
      "MART_LOG_FORMAT" $v.log.format
      "MART_SHUTDOWN_TIMEOUT" (printf "%vs" $v.shutdown.timeoutSeconds)
      "MART_JWT_ISSUER" $v.auth.issuer
      "MART_JWT_AUDIENCE" $v.auth.audience
      "MART_JWKS_URL" (include "mart.jwksURL" $root) -}}
{{- if eq $name "router" -}}
{{- $_ := set $plain "MART_ROUTER_ADDR" (printf "0.0.0.0:%v" $c.port) -}}
{{- range $svc := splitList " " (include "mart.services" $root) -}}
{{- if include "mart.enabled" (dict "root" $root "name" $svc) -}}
{{- $_ := set $plain (printf "MART_%s_ROUTING_URL" (upper $svc)) (printf "%s/graphql" (include "mart.serviceURL" (dict "root" $root "name" $svc))) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $isService -}}
{{- $_ := set $plain (printf "MART_%s_ADDR" (upper $name)) (printf "0.0.0.0:%v" $c.port) -}}
{{- $_ := set $plain (printf "MART_%s_DATABASE" (upper $name)) (required (printf "components.%s.database.name is required" $name) $c.database.name) -}}
{{- $_ := set $plain "KAFKA_BROKERS" (required "kafka.brokers is required: without it every pod would start its own in-process broker" $v.kafka.brokers) -}}
{{- $_ := set $plain "KAFKA_TLS" (ternary "true" "false" (eq (toString $v.kafka.tls.enabled) "true")) -}}
{{- if $v.kafka.tls.caSecret.name -}}
{{- if not $v.kafka.tls.enabled -}}{{- fail "kafka.tls.caSecret is set but kafka.tls.enabled is false" -}}{{- end -}}
{{- $_ := set $plain "KAFKA_TLS_CA_FILE" (printf "/etc/mart/kafka-ca/%s" $v.kafka.tls.caSecret.key) -}}
{{- end -}}
{{- with $v.kafka.sasl.mechanism -}}
{{- if not (has . (list "PLAIN" "SCRAM-SHA-256" "SCRAM-SHA-512")) -}}
{{- fail (printf "kafka.sasl.mechanism: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q" .) -}}
{{- end -}}
{{- $_ := set $plain "KAFKA_SASL_MECHANISM" . -}}
{{- $_ := set $plain "KAFKA_SASL_USERNAME" (required "kafka.sasl.username is required with kafka.sasl.mechanism" $v.kafka.sasl.username) -}}
{{- end -}}
{{- end -}}
{{- if eq $name "user" -}}
{{- $_ := set $plain "MART_ACCESS_TOKEN_TTL" $v.auth.accessTokenTTL -}}
{{- $_ := set $plain "MART_REFRESH_TOKEN_TTL" $v.auth.refreshTokenTTL -}}
{{- if $v.auth.keysSecret.name -}}
{{- $_ := set $plain "MART_JWT_KEY_FILE" (printf "/etc/mart/jwt/%s" $v.auth.keysSecret.key) -}}
{{- end -}}
{{- if $v.admin.email -}}
{{- $_ := set $plain "MART_ADMIN_EMAIL" $v.admin.email -}}
{{- end -}}
{{- end -}}
{{- if eq $name "notification" -}}
{{- $_ := set $plain "MART_SMTP_STARTTLS" $v.smtp.startTLS -}}
{{- $_ := set $plain "MART_SMTP_FROM" $v.smtp.from -}}
{{- $_ := set $plain "MART_SMS_FORMAT" $v.sms.format -}}
{{- with $v.smtp.addr -}}{{- $_ := set $plain "MART_SMTP_ADDR" . -}}{{- end -}}
{{- with $v.smtp.username -}}{{- $_ := set $plain "MART_SMTP_USERNAME" . -}}{{- end -}}
{{- with $v.sms.url -}}{{- $_ := set $plain "MART_SMS_URL" . -}}{{- end -}}
{{- end -}}
{{- range $k := keys $plain | sortAlpha -}}
{{- $managed = append $managed $k -}}
{{- $out = append $out (dict "name" $k "value" (toString (index $plain $k))) -}}
{{- end -}}
{{- /* from Secrets */ -}}
{{- $secrets := list -}}
{{- if $isService -}}
{{- $dbSecret := $v.database.secret -}}
{{- if and $c.database $c.database.secret $c.database.secret.name -}}
{{- $dbSecret = $c.database.secret -}}
{{- end -}}
{{- $secrets = append $secrets (dict "name" "DATABASE_URL" "secret" $dbSecret) -}}
{{- if $v.kafka.sasl.mechanism -}}
{{- $secrets = append $secrets (dict "name" "KAFKA_SASL_PASSWORD" "secret" $v.kafka.sasl.passwordSecret) -}}
{{- end -}}
{{- end -}}
{{- if eq $name "user" -}}
{{- if $v.admin.email -}}
{{- if not $v.admin.passwordSecret.name -}}{{- fail "admin.email is set: admin.passwordSecret.name is required too" -}}{{- end -}}
{{- $secrets = append $secrets (dict "name" "MART_ADMIN_PASSWORD" "secret" $v.admin.passwordSecret) -}}
{{- end -}}
{{- end -}}
{{- if eq $name "notification" -}}
{{- if $v.smtp.passwordSecret.name -}}
{{- $secrets = append $secrets (dict "name" "MART_SMTP_PASSWORD" "secret" $v.smtp.passwordSecret) -}}
{{- end -}}
{{- if $v.sms.tokenSecret.name -}}
{{- $secrets = append $secrets (dict "name" "MART_SMS_TOKEN" "secret" $v.sms.tokenSecret) -}}
{{- end -}}
{{- end -}}
{{- range $s := $secrets -}}
{{- $managed = append $managed $s.name -}}
{{- $ref := dict "name" (required (printf "%s: the Secret's name is required" $s.name) $s.secret.name) "key" (required (printf "%s: the Secret's key is required" $s.name) $s.secret.key) -}}
{{- $out = append $out (dict "name" $s.name "valueFrom" (dict "secretKeyRef" $ref)) -}}
{{- end -}}
{{- /* plain maps: global, then component */ -}}
{{- $secretVars := splitList " " (include "mart.secretVars" $root) -}}
{{- $extra := dict -}}
{{- range $k, $val := $v.env -}}{{- $_ := set $extra $k $val -}}{{- end -}}
{{- range $k, $val := ($c.env | default dict) -}}{{- $_ := set $extra $k $val -}}{{- end -}}
{{- range $k := keys $extra | sortAlpha -}}
{{- if has $k $secretVars -}}
{{- fail (printf "%s holds a secret: reference a Secret (see values.yaml) instead of a plain env value" $k) -}}
{{- end -}}
{{- if has $k $managed -}}
{{- fail (printf "%s is set by the chart for %s: use its value in values.yaml instead of env" $k $name) -}}
{{- end -}}
{{- $isListenAddr := and (hasPrefix "MART_" $k) (hasSuffix "_ADDR" $k) (not (has $k (list "MART_SMTP_ADDR" "MART_PPROF_ADDR" "MART_KAFKA_EMBEDDED_ADDR"))) -}}
{{- if or (eq $k "MART_TARGETS") $isListenAddr -}}
{{- fail (printf "%s is set by the chart (targets and listen addresses follow components.<name>)" $k) -}}
{{- end -}}
{{- $out = append $out (dict "name" $k "value" (toString (index $extra $k))) -}}
{{- end -}}
{{- range $e := concat ($v.extraEnv | default list) ($c.extraEnv | default list) -}}
{{- if and (has $e.name $secretVars) (hasKey $e "value") -}}
{{- fail (printf "extraEnv %s holds a secret: use valueFrom.secretKeyRef" $e.name) -}}
{{- end -}}
{{- $out = append $out $e -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}
