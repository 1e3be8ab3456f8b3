"""The support page's own words (labels, buttons), in pt-BR and English.

Owns: the page chrome only. Does not own: the guidance texts for a status
(``core.status_text``), which the page shows as they are.
"""

from __future__ import annotations

_PT = {
    "heading": "Suporte — entregas de e-mail",
    "switch": "English",
    "login": "Entrar",
    "logout": "Sair",
    "token": "Token de acesso",
    "bad_login": "Token inválido.",
    "address": "Endereço de e-mail",
    "tenant": "Cliente (tenant)",
    "search": "Buscar",
    "no_record": "O gateway não tem registro deste endereço:",
    "since": "desde",
    "since_h": "Desde",
    "expires": "Expira",
    "never": "nunca",
    "what_to_do": "O que fazer",
    "customer_message": "Mensagem para o cliente",
    "copy": "Copiar",
    "copied": "Copiado!",
    "refusal": "Recusa no envio",
    "suppression": "Bloqueio",
    "reason": "Motivo",
    "cause": "Causa",
    "note": "Nota",
    "unblock": "Desbloquear",
    "unblock_reason": "Motivo do desbloqueio (ex.: nº do chamado)",
    "unblock_confirm": "Confirmar desbloqueio",
    "events": "Últimos eventos",
    "no_events": "Nenhum evento registrado.",
    "time": "Quando",
    "type": "Evento",
    "category": "Categoria",
    "reply": "Resposta do servidor",
    "host": "Servidor",
    "queue": "Fila",
    "suppressions": "Lista de bloqueio",
    "overview": "Visão geral",
    "messages": "Mensagens",
    "filter": "Filtrar",
    "all": "todos",
    "next": "Próxima página",
    "status_rejected": "Recusado",
    "status_queued": "Na fila",
    "status_deferred": "Adiado (nova tentativa)",
    "status_sent": "Entregue ao provedor",
    "status_bounced": "Devolvido",
    "status_expired": "Expirado",
    "status_suppressed": "Bloqueado",
    "status_held": "Retido",
    "supp_repeated_failures": "falhas repetidas",
    "status_provider_hold": "Retido pelo provedor até o remetente confirmar",
    "provider_hold": "Antispam do provedor",
    "provider_hold_link": "Link do desafio",
    "provider_hold_no_link": (
        "O aviso do provedor não trouxe link: peça ao cliente que autorize o nosso remetente."
    ),
    "supp_nonexistent_address": "endereço inexistente",
    "supp_complaint": "reclamação (spam)",
    "supp_opt_out": "descadastro",
    "supp_manual": "bloqueio manual",
    "supp_probation_failure": "falha durante o período de observação",
    # Escopos e período de observação (issue 15).
    "scope": "Vale para",
    "scope_all": "todos os e-mails: nenhuma mensagem é enviada a este endereço",
    "scope_marketing": (
        "somente marketing: o cliente pediu para não receber marketing;"
        " cobranças continuam sendo enviadas"
    ),
    "scope_transactional": (
        "somente e-mails transacionais (cobranças, recibos); o marketing continua"
    ),
    "probation": "Em observação após o desbloqueio",
    "probation_until": "até",
    "probation_rule": (
        "A primeira falha definitiva (endereço inexistente, caixa desativada ou cheia,"
        " problema no recebimento) antes do fim bloqueia o endereço de novo na hora."
    ),
    "probation_success": "Entrega com sucesso desde o desbloqueio em",
    "probation_no_success": "Nenhuma entrega desde o desbloqueio ainda.",
    "ev_queued": "na fila",
    "ev_duplicate": "duplicada",
    "ev_sent": "entregue",
    "ev_deferred": "adiada",
    "ev_bounced": "devolvida",
    "ev_expired": "expirada",
    "ev_rejected": "recusada",
    "ev_report": "relatório recebido",
    "ev_suppressed": "bloqueado",
    "ev_unsuppressed": "desbloqueado",
    "ev_held": "retida",
    "ev_released": "liberada",
    "ev_possible_typo": "possível erro de digitação",
    "possible_typo": "Possível erro de digitação no domínio",
    "did_you_mean": "você quis dizer",
}

_EN = {
    "heading": "Support — e-mail deliveries",
    "switch": "Português",
    "login": "Log in",
    "logout": "Log out",
    "token": "Access token",
    "bad_login": "Invalid token.",
    "address": "E-mail address",
    "tenant": "Tenant",
    "search": "Search",
    "no_record": "The gateway has no record of this address:",
    "since": "since",
    "since_h": "Since",
    "expires": "Expires",
    "never": "never",
    "what_to_do": "What to do",
    "customer_message": "Message for the customer",
    "copy": "Copy",
    "copied": "Copied!",
    "refusal": "Refused at intake",
    "suppression": "Block",
    "reason": "Reason",
    "cause": "Cause",
    "note": "Note",
    "unblock": "Unblock",
    "unblock_reason": "Reason for unblocking (e.g. ticket number)",
    "unblock_confirm": "Confirm unblock",
    "events": "Latest events",
    "no_events": "No events recorded.",
    "time": "When",
    "type": "Event",
    "category": "Category",
    "reply": "Server reply",
    "host": "Server",
    "queue": "Queue id",
    "suppressions": "Suppression list",
    "overview": "Overview",
    "messages": "Messages",
    "filter": "Filter",
    "all": "all",
    "next": "Next page",
    "status_rejected": "Refused",
    "status_queued": "Queued",
    "status_deferred": "Deferred (will retry)",
    "status_sent": "Delivered to the provider",
    "status_bounced": "Bounced",
    "status_expired": "Expired",
    "status_suppressed": "Blocked",
    "status_held": "Held",
    "supp_repeated_failures": "repeated failures",
    "supp_nonexistent_address": "nonexistent address",
    "supp_complaint": "complaint (spam)",
    "supp_opt_out": "opt-out",
    "supp_manual": "manual block",
    "status_provider_hold": "Held by the provider until the sender confirms",
    "provider_hold": "Provider's anti-spam",
    "provider_hold_link": "Challenge link",
    "provider_hold_no_link": (
        "The provider's report gave no link: ask the customer to authorise our sender."
    ),
    "supp_probation_failure": "failure during probation",
    # Scopes and probation (issue 15).
    "scope": "Applies to",
    "scope_all": "all mail: nothing is sent to this address",
    "scope_marketing": (
        "marketing only: the customer asked not to receive marketing;"
        " invoices are still sent"
    ),
    "scope_transactional": "transactional mail only (invoices, receipts); marketing goes on",
    "probation": "On probation after the unblock",
    "probation_until": "until",
    "probation_rule": (
        "The first final failure (nonexistent address, disabled or full mailbox, receiving"
        " problem) before the end blocks the address again at once."
    ),
    "probation_success": "Delivered successfully since the unblock at",
    "probation_no_success": "No delivery since the unblock yet.",
    "ev_queued": "queued",
    "ev_duplicate": "duplicate",
    "ev_sent": "delivered",
    "ev_deferred": "deferred",
    "ev_bounced": "bounced",
    "ev_expired": "expired",
    "ev_rejected": "refused",
    "ev_report": "report received",
    "ev_suppressed": "blocked",
    "ev_unsuppressed": "unblocked",
    "ev_held": "held",
    "ev_released": "released",
    "ev_possible_typo": "possible typo",
    "possible_typo": "Possible typo in the domain",
    "did_you_mean": "did you mean",
}

_TEXTS = {"pt-BR": _PT, "en": _EN}


def page_text(lang: str) -> dict[str, str]:
    """The labels for ``"pt-BR"`` or ``"en"`` (anything else gets pt-BR)."""
    return _TEXTS.get(lang, _PT)
