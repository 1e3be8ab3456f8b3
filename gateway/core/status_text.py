"""Plain words for support staff: what a recipient's status means and what to do.

Owns: the :class:`Guidance` for every recipient status, category and reason, in Brazilian
Portuguese (the default) and English, and the fold of categories into the four words
support already uses (docs/architecture.md, "Categories"). Does not own: the statuses
themselves (``core.model``), the remote server's own text (kept on the event, shown
beside this guidance), or page layout (``admin``).

Lookup is by ``"<status>:<detail>"`` first and ``"<status>"`` second, where the detail is
the intake reason for ``rejected``, the suppression reason for ``suppressed``, the
category for ``bounced`` and ``sent``, and the folded category for ``deferred`` and
``expired``. Every status has a generic entry, so any combination has guidance.

A refusal that named a suggested address (a known typo domain, or a near miss of a popular
domain that has no MX or refuses mail) has its own texts naming that address, in both
languages, for support and in the customer message. The address comes from the refusal's
recorded data, never from the words of the reply.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.model import Category, Status

__all__ = [
    "DEFAULT_LANG",
    "FOLDED_LABELS",
    "LANGS",
    "Guidance",
    "folded_category",
    "folded_label",
    "guidance",
]

DEFAULT_LANG = "pt-BR"
LANGS = ("pt-BR", "en")


@dataclass(frozen=True, slots=True)
class Guidance:
    """What support reads and sends.

    Args:
        title: the status in a few plain words.
        what_to_do: what happened and what support should do, for support staff.
        customer_message: a ready-to-send message for the person the e-mail was for.
    """

    title: str
    what_to_do: str
    customer_message: str


_FOLD: dict[Category, str] = {
    Category.NONEXISTENT_ADDRESS: "nonexistent_address",
    Category.MAILBOX_DISABLED: "nonexistent_address",
    Category.MAILBOX_FULL: "mailbox_full",
    Category.SPAM_BLOCKED: "spam_blocked",
    Category.SENDER_CONFIG: "spam_blocked",
    Category.COMPLAINT: "spam_blocked",
    Category.RECEIVING_PROBLEM: "receiving_problem",
    Category.MESSAGE_TOO_LARGE: "receiving_problem",
}

#: The four support words, in each language.
FOLDED_LABELS: dict[str, dict[str, str]] = {
    "nonexistent_address": {"pt-BR": "endereço inexistente", "en": "nonexistent address"},
    "mailbox_full": {"pt-BR": "caixa cheia", "en": "mailbox full"},
    "spam_blocked": {"pt-BR": "spam/bloqueio", "en": "spam/blocked"},
    "receiving_problem": {"pt-BR": "problema no recebimento", "en": "receiving problem"},
}


def folded_category(category: Category | None) -> str:
    """Fold a category into one of the four support words.

    ``nonexistent_address`` and ``mailbox_disabled`` → ``"nonexistent_address"``;
    ``mailbox_full`` → ``"mailbox_full"``; ``spam_blocked``, ``sender_config`` and
    ``complaint`` (the recipient blocked us) → ``"spam_blocked"``; ``receiving_problem`` and
    ``message_too_large`` → ``"receiving_problem"``.

    Args:
        category: a category, or ``None``.

    Returns:
        A key of :data:`FOLDED_LABELS`, or ``""`` for what is not a failure (``delivered``,
        ``auto_reply``, ``None``).
    """
    if category is None:
        return ""
    return _FOLD.get(category, "")


def folded_label(category: Category | None, lang: str = DEFAULT_LANG) -> str:
    """The support word for a category in a language (``""`` when not a failure).

    Args:
        category: a category, or ``None``.
        lang: ``"pt-BR"`` or ``"en"``; others fall back as in :func:`guidance`.
    """
    word = folded_category(category)
    return FOLDED_LABELS[word][_lang(lang)] if word else ""


def _lang(lang: str) -> str:
    tag = lang.strip().replace("_", "-").lower()
    if tag == "en" or tag.startswith("en-"):
        return "en"
    return DEFAULT_LANG


_G = Guidance

_PT: dict[str, Guidance] = {
    # --- refused at intake ------------------------------------------------------------
    "rejected": _G(
        "Recusado no envio",
        "O gateway recusou este destinatário antes de enviar. Veja o motivo no histórico, "
        "corrija o cadastro e envie de novo.",
        "Olá! Não conseguimos enviar nosso e-mail para o endereço cadastrado. Pode confirmar "
        "se o seu endereço de e-mail está correto?",
    ),
    "rejected:invalid": _G(
        "Endereço de e-mail inválido",
        "O endereço está escrito de forma inválida e a mensagem não foi aceita. Peça ao "
        "cliente um endereço válido e corrija o cadastro.",
        "Olá! Não conseguimos enviar nosso e-mail porque o endereço cadastrado parece estar "
        "incorreto. Pode nos informar um endereço de e-mail válido?",
    ),
    "rejected:typo": _G(
        "Erro de digitação no domínio",
        "A parte depois do @ parece ter um erro de digitação (por exemplo, gmial.com em vez "
        "de gmail.com) e a mensagem não foi aceita. Confirme o endereço correto com o "
        "cliente e corrija o cadastro.",
        "Olá! Parece que o seu endereço de e-mail foi cadastrado com um erro de digitação, "
        "por isso nossa mensagem não foi enviada. Pode confirmar o endereço correto?",
    ),
    "rejected:no_such_domain": _G(
        "O domínio do e-mail não existe",
        "O domínio (a parte depois do @) não existe ou não recebe e-mails. Peça ao cliente "
        "um endereço válido e corrija o cadastro.",
        "Olá! O domínio do endereço de e-mail que temos cadastrado não existe ou não recebe "
        "mensagens. Pode nos informar um endereço de e-mail válido?",
    ),
    "rejected:null_mx": _G(
        "O domínio não recebe e-mails",
        "O domínio declara que não aceita e-mails (MX nulo). Peça ao cliente outro endereço.",
        "Olá! O endereço de e-mail que temos cadastrado pertence a um domínio que não recebe "
        "mensagens. Pode nos informar outro endereço de e-mail?",
    ),
    "rejected:suppressed": _G(
        "Endereço bloqueado",
        "O endereço está na lista de bloqueio (falhas anteriores, reclamação ou "
        "descadastro) e a mensagem não foi aceita. Veja o motivo do bloqueio no histórico "
        "do endereço antes de fazer qualquer coisa.",
        "Olá! Não conseguimos enviar e-mails para o endereço que temos cadastrado. Pode nos "
        "informar outro endereço ou confirmar se este está funcionando?",
    ),
    "rejected:quota": _G(
        "Cota de envio esgotada",
        "O plano atingiu o limite de envios e a mensagem não foi aceita. O endereço do "
        "cliente não tem problema: aguarde a renovação da cota ou aumente o limite do plano "
        "e envie de novo.",
        "Olá! Tivemos um atraso no envio do nosso e-mail. Vamos enviá-lo novamente em breve.",
    ),
    "rejected:too_many_recipients": _G(
        "Destinatários demais na mesma mensagem",
        "A mensagem tinha destinatários demais e este não foi aceito. Envie em lotes menores; "
        "o endereço do cliente não tem problema.",
        "Olá! Tivemos um atraso no envio do nosso e-mail. Vamos enviá-lo novamente em breve.",
    ),
    # --- in progress ------------------------------------------------------------------
    "queued": _G(
        "Na fila de envio",
        "A mensagem foi aceita e será entregue em instantes. Não é preciso fazer nada.",
        "Olá! Nosso e-mail para você está sendo enviado e deve chegar em alguns minutos.",
    ),
    "held": _G(
        "Retido para revisão",
        "A mensagem foi aceita mas está retida no gateway e ainda não foi enviada. Fale com "
        "o administrador para liberá-la.",
        "Olá! Nosso e-mail para você está em processamento e será enviado em breve.",
    ),
    "deferred": _G(
        "Entrega adiada, tentando de novo",
        "O provedor do destinatário pediu para tentar mais tarde. O gateway tenta de novo "
        "sozinho durante alguns dias; por enquanto, basta aguardar.",
        "Olá! O seu provedor de e-mail ainda não aceitou nossa mensagem, mas continuamos "
        "tentando. Se ela não chegar até amanhã, pode nos informar outro endereço?",
    ),
    "deferred:mailbox_full": _G(
        "Entrega adiada: caixa de entrada cheia",
        "O provedor diz que a caixa de entrada do cliente está cheia. O gateway continua "
        "tentando; peça ao cliente que libere espaço para a mensagem chegar.",
        "Olá! Tentamos enviar um e-mail para você, mas a sua caixa de entrada está cheia. "
        "Pode apagar algumas mensagens para liberar espaço? Continuaremos tentando.",
    ),
    "deferred:spam_blocked": _G(
        "Entrega adiada: provedor bloqueando o remetente",
        "O provedor está segurando nossas mensagens (antispam ou limite de envio). O gateway "
        "continua tentando; se o cliente usa UOL, BOL ou Terra, peça que autorize nosso "
        "remetente no antispam.",
        "Olá! O seu provedor de e-mail está segurando nossa mensagem. Para recebê-la, "
        "adicione o nosso endereço de envio aos seus contatos ou remetentes confiáveis e, se "
        "o provedor pedir, confirme o remetente.",
    ),
    "sent": _G(
        "Enviado e aceito pelo provedor",
        "O provedor do destinatário aceitou a mensagem. Se o cliente não a encontrou, peça "
        "que confira se o endereço está correto, a pasta de spam ou lixo eletrônico e os "
        "filtros ou regras da caixa de entrada.",
        "Olá! Nosso e-mail foi entregue ao seu provedor. Se não o encontrar na caixa de "
        "entrada, procure na pasta de spam ou lixo eletrônico, verifique os filtros do seu "
        "e-mail e adicione o nosso remetente aos seus contatos.",
    ),
    "sent:auto_reply": _G(
        "Enviado; chegou uma resposta automática",
        "A mensagem foi entregue e voltou uma resposta automática (férias, ausência, troca "
        "de endereço). Leia a resposta no histórico; em geral não é preciso fazer nada.",
        "Olá! Enviamos um e-mail para você e recebemos uma resposta automática. Quando puder, "
        "confira a sua caixa de entrada.",
    ),
    "sent:complaint": _G(
        "O destinatário marcou a mensagem como spam",
        "A mensagem foi entregue, mas o destinatário a marcou como spam. O endereço é "
        "bloqueado para novos envios; só volte a enviar com um novo consentimento do cliente.",
        "Olá! Notamos que você marcou um e-mail nosso como spam, por isso deixamos de enviar "
        "mensagens para este endereço. Se quiser voltar a recebê-las, é só nos avisar.",
    ),
    # --- final failures ---------------------------------------------------------------
    "bounced": _G(
        "Devolvido pelo provedor",
        "O provedor do destinatário recusou a mensagem. Veja a resposta do provedor no "
        "histórico, confira o endereço com o cliente ou peça outro endereço.",
        "Olá! O seu provedor de e-mail recusou nossa mensagem. Pode confirmar se o seu "
        "endereço de e-mail está correto ou nos informar outro?",
    ),
    "bounced:nonexistent_address": _G(
        "O endereço de e-mail não existe",
        "O provedor informou que este endereço não existe (erro de digitação ou conta "
        "encerrada). Peça ao cliente um endereço válido e corrija o cadastro.",
        "Olá! Tentamos enviar um e-mail para você, mas o seu provedor informou que o endereço "
        "não existe. Pode nos informar um endereço de e-mail válido?",
    ),
    "bounced:mailbox_disabled": _G(
        "Conta de e-mail desativada",
        "O provedor informou que a conta existe, mas está desativada ou suspensa. Peça ao "
        "cliente outro endereço ou que reative a conta.",
        "Olá! Tentamos enviar um e-mail para você, mas o seu provedor informou que a conta "
        "está desativada. Pode reativá-la ou nos informar outro endereço de e-mail?",
    ),
    "bounced:mailbox_full": _G(
        "Caixa de entrada cheia",
        "O provedor recusou a mensagem porque a caixa de entrada do cliente está cheia. Peça "
        "que ele libere espaço ou informe outro endereço, e envie de novo.",
        "Olá! Tentamos enviar um e-mail para você, mas a sua caixa de entrada está cheia. "
        "Pode liberar espaço ou nos informar outro endereço de e-mail?",
    ),
    "bounced:message_too_large": _G(
        "Mensagem grande demais para o provedor",
        "O provedor recusou a mensagem pelo tamanho (anexos grandes). O endereço do cliente "
        "está correto: reduza os anexos ou envie um link e tente de novo.",
        "Olá! Nossa mensagem para você era grande demais para o seu provedor de e-mail. "
        "Vamos reenviá-la em um formato menor.",
    ),
    "bounced:spam_blocked": _G(
        "Bloqueado como spam pelo provedor",
        "O provedor recusou a mensagem por considerá-la spam ou por bloquear o remetente "
        "(UOL, BOL e Terra pedem que o destinatário autorize o remetente). Peça ao cliente "
        "que adicione nosso remetente aos contatos ou remetentes confiáveis e o desbloqueie; "
        "depois envie de novo.",
        "Olá! O seu provedor de e-mail bloqueou nossa mensagem. Para recebê-la, adicione o "
        "nosso endereço de envio aos seus contatos ou à lista de remetentes confiáveis e, se "
        "o provedor pedir, confirme o remetente. Depois disso, enviaremos de novo.",
    ),
    "bounced:sender_config": _G(
        "Recusado por configuração do nosso envio",
        "O provedor recusou a mensagem por um problema na configuração do envio (SPF, DKIM, "
        "DMARC, DNS reverso ou TLS). O problema não é do cliente: avise a equipe técnica.",
        "Olá! Tivemos um problema técnico no envio do nosso e-mail. Já estamos corrigindo e "
        "enviaremos de novo em breve.",
    ),
    "bounced:receiving_problem": _G(
        "Problema no recebimento do provedor",
        "O provedor do destinatário não conseguiu receber a mensagem (falha no servidor ou "
        "domínio mal configurado). Confira o endereço com o cliente ou peça um endereço "
        "alternativo.",
        "Olá! O seu provedor de e-mail está com problemas para receber nossas mensagens. "
        "Pode confirmar o seu endereço ou nos informar outro?",
    ),
    "bounced:complaint": _G(
        "O destinatário marcou a mensagem como spam",
        "O destinatário marcou uma mensagem nossa como spam. O endereço é bloqueado para "
        "novos envios; só volte a enviar com um novo consentimento do cliente.",
        "Olá! Notamos que você marcou um e-mail nosso como spam, por isso deixamos de enviar "
        "mensagens para este endereço. Se quiser voltar a recebê-las, é só nos avisar.",
    ),
    "expired": _G(
        "Não entregue: prazo de tentativas esgotado",
        "O gateway tentou entregar por vários dias e o provedor não aceitou. Confira o "
        "endereço com o cliente ou peça um endereço alternativo.",
        "Olá! Tentamos enviar um e-mail para você durante vários dias, sem sucesso. Pode "
        "confirmar o seu endereço ou nos informar outro?",
    ),
    "expired:mailbox_full": _G(
        "Não entregue: caixa de entrada cheia por dias",
        "A caixa de entrada do cliente ficou cheia durante todas as tentativas. Peça que ele "
        "libere espaço ou informe outro endereço, e envie de novo.",
        "Olá! Tentamos enviar um e-mail para você durante vários dias, mas a sua caixa de "
        "entrada está cheia. Pode liberar espaço ou nos informar outro endereço?",
    ),
    "expired:spam_blocked": _G(
        "Não entregue: provedor bloqueou o remetente",
        "O provedor segurou nossas mensagens durante todas as tentativas (antispam ou limite "
        "de envio). Peça ao cliente que autorize nosso remetente e envie de novo; se "
        "acontecer com muitos clientes do mesmo provedor, avise a equipe técnica.",
        "Olá! O seu provedor de e-mail bloqueou nossa mensagem. Para recebê-la, adicione o "
        "nosso endereço de envio aos seus contatos ou remetentes confiáveis. Depois disso, "
        "enviaremos de novo.",
    ),
    # --- suppressed -------------------------------------------------------------------
    "suppressed": _G(
        "Endereço bloqueado",
        "O endereço está na lista de bloqueio e o gateway não envia para ele. Veja o motivo e "
        "a data no histórico do endereço.",
        "Olá! Não conseguimos enviar e-mails para o endereço que temos cadastrado. Pode nos "
        "informar outro endereço de e-mail?",
    ),
    "suppressed:repeated_failures": _G(
        "Bloqueado após falhas repetidas",
        "Várias entregas seguidas para este endereço falharam, e ele foi bloqueado para "
        "proteger a reputação do envio. É preciso um novo endereço; se o cliente confirmar "
        "que este voltou a funcionar, um administrador pode desbloqueá-lo.",
        "Olá! As nossas últimas mensagens para o seu e-mail não puderam ser entregues. Pode "
        "nos informar outro endereço de e-mail ou confirmar se este está funcionando?",
    ),
    "suppressed:nonexistent_address": _G(
        "Bloqueado: o endereço não existe",
        "O provedor informou que o endereço não existe, e novos envios estão bloqueados. Peça "
        "ao cliente um endereço válido e atualize o cadastro.",
        "Olá! O seu provedor informou que o endereço de e-mail que temos cadastrado não "
        "existe. Pode nos informar um endereço de e-mail válido?",
    ),
    "suppressed:complaint": _G(
        "Bloqueado: o destinatário marcou como spam",
        "O destinatário marcou uma mensagem nossa como spam. Não envie e-mails para este "
        "endereço sem um novo consentimento do cliente; só um administrador pode desbloquear.",
        "Olá! Notamos que você marcou um e-mail nosso como spam, por isso deixamos de enviar "
        "mensagens para este endereço. Se quiser voltar a recebê-las, é só nos avisar.",
    ),
    "suppressed:opt_out": _G(
        "Descadastrado pelo destinatário",
        "O destinatário pediu para não receber mais e-mails (link de descadastro ou "
        "resposta SAIR). A decisão é definitiva por lei: não contate por e-mail e não "
        "desbloqueie sem um novo pedido expresso do cliente.",
        "Olá! Conforme o seu pedido, você não receberá mais nossos e-mails. Se mudar de "
        "ideia, fale conosco por outro canal.",
    ),
    "suppressed:manual": _G(
        "Bloqueado pelo administrador",
        "Um administrador bloqueou este endereço. Veja a observação no histórico e fale com "
        "ele antes de pedir o desbloqueio.",
        "Olá! No momento não estamos enviando e-mails para o endereço que temos cadastrado. "
        "Pode nos informar outro endereço de e-mail?",
    ),
}

_EN: dict[str, Guidance] = {
    "rejected": _G(
        "Refused before sending",
        "The gateway refused this recipient before sending. See the reason in the history, "
        "fix the record and send again.",
        "Hello! We could not send our e-mail to the address we have on file. Could you "
        "confirm that your e-mail address is correct?",
    ),
    "rejected:invalid": _G(
        "Invalid e-mail address",
        "The address is not a valid e-mail address and the message was not accepted. Ask "
        "the customer for a valid address and fix the record.",
        "Hello! We could not send our e-mail because the address we have on file seems to "
        "be wrong. Could you give us a valid e-mail address?",
    ),
    "rejected:typo": _G(
        "Misspelt e-mail domain",
        "The part after the @ looks misspelt (for example gmial.com instead of gmail.com) "
        "and the message was not accepted. Confirm the right address with the customer and "
        "fix the record.",
        "Hello! Your e-mail address seems to have been recorded with a typo, so our message "
        "was not sent. Could you confirm the correct address?",
    ),
    "rejected:no_such_domain": _G(
        "The e-mail domain does not exist",
        "The domain (the part after the @) does not exist or receives no mail. Ask the "
        "customer for a valid address and fix the record.",
        "Hello! The domain of the e-mail address we have on file does not exist or cannot "
        "receive mail. Could you give us a valid e-mail address?",
    ),
    "rejected:null_mx": _G(
        "The domain receives no e-mail",
        "The domain declares that it accepts no mail (null MX). Ask the customer for "
        "another address.",
        "Hello! The e-mail address we have on file belongs to a domain that receives no "
        "mail. Could you give us another e-mail address?",
    ),
    "rejected:suppressed": _G(
        "Address blocked",
        "The address is on the suppression list (earlier failures, a complaint or an "
        "opt-out) and the message was not accepted. Check why it was blocked in the "
        "address's history before doing anything.",
        "Hello! We cannot send e-mail to the address we have on file. Could you give us "
        "another address, or confirm that this one works?",
    ),
    "rejected:quota": _G(
        "Sending quota exhausted",
        "The plan has reached its sending limit and the message was not accepted. The "
        "customer's address is fine: wait for the quota to renew or raise the plan's limit, "
        "then send again.",
        "Hello! Our e-mail to you was delayed. We will send it again shortly.",
    ),
    "rejected:too_many_recipients": _G(
        "Too many recipients in one message",
        "The message had too many recipients and this one was not accepted. Send in smaller "
        "batches; the customer's address is fine.",
        "Hello! Our e-mail to you was delayed. We will send it again shortly.",
    ),
    "queued": _G(
        "Queued for delivery",
        "The message was accepted and will be delivered in a moment. Nothing to do.",
        "Hello! Our e-mail to you is on its way and should arrive within a few minutes.",
    ),
    "held": _G(
        "Held for review",
        "The message was accepted but is held in the gateway and has not been sent yet. Ask "
        "the administrator to release it.",
        "Hello! Our e-mail to you is being processed and will be sent shortly.",
    ),
    "deferred": _G(
        "Delivery delayed, retrying",
        "The recipient's provider asked us to try again later. The gateway keeps retrying "
        "by itself for a few days; for now, just wait.",
        "Hello! Your e-mail provider has not accepted our message yet, but we keep trying. "
        "If it has not arrived by tomorrow, could you give us another address?",
    ),
    "deferred:mailbox_full": _G(
        "Delivery delayed: mailbox full",
        "The provider says the customer's mailbox is full. The gateway keeps trying; ask the "
        "customer to clear some space so the message can arrive.",
        "Hello! We tried to send you an e-mail, but your mailbox is full. Could you delete "
        "some messages to free up space? We will keep trying.",
    ),
    "deferred:spam_blocked": _G(
        "Delivery delayed: the provider is holding our mail",
        "The provider is holding our messages (anti-spam or rate limit). The gateway keeps "
        "trying; if the customer uses UOL, BOL or Terra, ask them to authorise our sender in "
        "the anti-spam settings.",
        "Hello! Your e-mail provider is holding our message. To receive it, add our sending "
        "address to your contacts or trusted senders and, if your provider asks, confirm "
        "the sender.",
    ),
    "sent": _G(
        "Sent and accepted by the provider",
        "The recipient's provider accepted the message. If the customer cannot find it, ask "
        "them to check that the address is right, the spam or junk folder, and their inbox "
        "filters or rules.",
        "Hello! Our e-mail was delivered to your provider. If it is not in your inbox, look "
        "in the spam or junk folder, check your e-mail filters, and add our sender to your "
        "contacts.",
    ),
    "sent:auto_reply": _G(
        "Sent; an automatic reply came back",
        "The message was delivered and an automatic reply came back (holiday, absence, "
        "changed address). Read it in the history; usually there is nothing to do.",
        "Hello! We sent you an e-mail and received an automatic reply. Please check your "
        "inbox when you can.",
    ),
    "sent:complaint": _G(
        "The recipient marked the message as spam",
        "The message was delivered, but the recipient marked it as spam. The address is "
        "blocked for further mail; send again only with the customer's renewed consent.",
        "Hello! We noticed you marked one of our e-mails as spam, so we have stopped sending "
        "to this address. If you would like to receive our e-mails again, just let us know.",
    ),
    "bounced": _G(
        "Returned by the provider",
        "The recipient's provider refused the message. See the provider's reply in the "
        "history, check the address with the customer or ask for another one.",
        "Hello! Your e-mail provider refused our message. Could you confirm that your e-mail "
        "address is correct, or give us another one?",
    ),
    "bounced:nonexistent_address": _G(
        "The e-mail address does not exist",
        "The provider says this address does not exist (a typo or a closed account). Ask the "
        "customer for a valid address and fix the record.",
        "Hello! We tried to send you an e-mail, but your provider says the address does not "
        "exist. Could you give us a valid e-mail address?",
    ),
    "bounced:mailbox_disabled": _G(
        "E-mail account disabled",
        "The provider says the account exists but is disabled or suspended. Ask the "
        "customer for another address or to reactivate the account.",
        "Hello! We tried to send you an e-mail, but your provider says the account is "
        "disabled. Could you reactivate it or give us another e-mail address?",
    ),
    "bounced:mailbox_full": _G(
        "Mailbox full",
        "The provider refused the message because the customer's mailbox is full. Ask them "
        "to clear the inbox or give another address, then send again.",
        "Hello! We tried to send you an e-mail, but your mailbox is full. Could you free up "
        "some space or give us another e-mail address?",
    ),
    "bounced:message_too_large": _G(
        "Message too large for the provider",
        "The provider refused the message because of its size (large attachments). The "
        "customer's address is fine: shrink the attachments or send a link, then try again.",
        "Hello! Our message to you was too large for your e-mail provider. We will send it "
        "again in a smaller form.",
    ),
    "bounced:spam_blocked": _G(
        "Blocked as spam by the provider",
        "The provider refused the message as spam or blocked the sender (UOL, BOL and Terra "
        "ask the recipient to authorise senders). Ask the customer to add our sender to "
        "their contacts or trusted senders and unblock it, then send again.",
        "Hello! Your e-mail provider blocked our message. To receive it, add our sending "
        "address to your contacts or trusted senders and, if your provider asks, confirm the "
        "sender. We will then send it again.",
    ),
    "bounced:sender_config": _G(
        "Refused because of our sending set-up",
        "The provider refused the message because of a problem in our sending set-up (SPF, "
        "DKIM, DMARC, reverse DNS or TLS). It is not the customer's fault: tell the technical "
        "team.",
        "Hello! We had a technical problem sending our e-mail. We are fixing it and will "
        "send it again shortly.",
    ),
    "bounced:receiving_problem": _G(
        "Receiving problem at the provider",
        "The recipient's provider could not receive the message (a server failure or a "
        "misconfigured domain). Check the address with the customer or ask for another one.",
        "Hello! Your e-mail provider is having trouble receiving our messages. Could you "
        "confirm your address or give us another one?",
    ),
    "bounced:complaint": _G(
        "The recipient marked the message as spam",
        "The recipient marked one of our messages as spam. The address is blocked for "
        "further mail; send again only with the customer's renewed consent.",
        "Hello! We noticed you marked one of our e-mails as spam, so we have stopped sending "
        "to this address. If you would like to receive our e-mails again, just let us know.",
    ),
    "expired": _G(
        "Not delivered: retry period over",
        "The gateway tried to deliver for several days and the provider never accepted. "
        "Check the address with the customer or ask for another one.",
        "Hello! We tried to send you an e-mail for several days without success. Could you "
        "confirm your address or give us another one?",
    ),
    "expired:mailbox_full": _G(
        "Not delivered: mailbox full for days",
        "The customer's mailbox stayed full through every attempt. Ask them to clear the "
        "inbox or give another address, then send again.",
        "Hello! We tried to send you an e-mail for several days, but your mailbox is full. "
        "Could you free up some space or give us another address?",
    ),
    "expired:spam_blocked": _G(
        "Not delivered: the provider blocked our sender",
        "The provider held our messages through every attempt (anti-spam or rate limit). "
        "Ask the customer to authorise our sender and send again; if many customers of the "
        "same provider are affected, tell the technical team.",
        "Hello! Your e-mail provider blocked our message. To receive it, add our sending "
        "address to your contacts or trusted senders. We will then send it again.",
    ),
    "suppressed": _G(
        "Address blocked",
        "The address is on the suppression list and the gateway does not send to it. See "
        "the reason and date in the address's history.",
        "Hello! We cannot send e-mail to the address we have on file. Could you give us "
        "another e-mail address?",
    ),
    "suppressed:repeated_failures": _G(
        "Blocked after repeated failures",
        "Several deliveries in a row to this address failed, so it was blocked to protect "
        "our sending reputation. A new address is needed; if the customer confirms this one "
        "works again, an administrator can unblock it.",
        "Hello! Our last messages to your e-mail address could not be delivered. Could you "
        "give us another e-mail address, or confirm that this one works?",
    ),
    "suppressed:nonexistent_address": _G(
        "Blocked: the address does not exist",
        "The provider said the address does not exist, so further mail is blocked. Ask the "
        "customer for a valid address and update the record.",
        "Hello! Your provider told us the e-mail address we have on file does not exist. "
        "Could you give us a valid e-mail address?",
    ),
    "suppressed:complaint": _G(
        "Blocked: the recipient marked us as spam",
        "The recipient marked one of our messages as spam. Do not e-mail this address "
        "without the customer's renewed consent; only an administrator can unblock it.",
        "Hello! We noticed you marked one of our e-mails as spam, so we have stopped sending "
        "to this address. If you would like to receive our e-mails again, just let us know.",
    ),
    "suppressed:opt_out": _G(
        "Opted out by the recipient",
        "The recipient asked to receive no more e-mail (unsubscribe link or a SAIR reply). "
        "This is legally final: do not contact them by e-mail and do not unblock without a "
        "new explicit request from the customer.",
        "Hello! As you asked, you will receive no more e-mails from us. If you change your "
        "mind, contact us through another channel.",
    ),
    "suppressed:manual": _G(
        "Blocked by an administrator",
        "An administrator blocked this address. Read the note in the history and talk to "
        "them before asking for it to be unblocked.",
        "Hello! We are not sending e-mail to the address we have on file at the moment. "
        "Could you give us another e-mail address?",
    ),
}

# The entries that name the suggested address (``{suggestion}``), used when there is one.
_PT_SUGGESTED: dict[str, Guidance] = {
    "rejected:typo": _G(
        "Erro de digitação no domínio",
        "A parte depois do @ parece ter um erro de digitação e a mensagem não foi aceita. O "
        "endereço provável é {suggestion}: confirme com o cliente e corrija o cadastro.",
        "Olá! Parece que o seu endereço de e-mail foi cadastrado com um erro de digitação, "
        "por isso nossa mensagem não foi enviada. Você quis dizer {suggestion}? Pode "
        "confirmar o endereço correto?",
    ),
    "rejected:no_such_domain": _G(
        "O domínio do e-mail não existe",
        "O domínio (a parte depois do @) não existe ou não recebe e-mails; parece um erro de "
        "digitação de {suggestion}. Confirme o endereço com o cliente e corrija o cadastro.",
        "Olá! O domínio do endereço de e-mail que temos cadastrado não existe ou não recebe "
        "mensagens. Você quis dizer {suggestion}? Pode confirmar o endereço correto?",
    ),
    "rejected:null_mx": _G(
        "O domínio não recebe e-mails",
        "O domínio declara que não aceita e-mails (MX nulo); parece um erro de digitação de "
        "{suggestion}. Confirme o endereço com o cliente e corrija o cadastro.",
        "Olá! O endereço de e-mail que temos cadastrado pertence a um domínio que não recebe "
        "mensagens. Você quis dizer {suggestion}? Pode confirmar o endereço correto?",
    ),
}

_EN_SUGGESTED: dict[str, Guidance] = {
    "rejected:typo": _G(
        "Misspelt e-mail domain",
        "The part after the @ looks misspelt and the message was not accepted. The likely "
        "address is {suggestion}: confirm it with the customer and fix the record.",
        "Hello! Your e-mail address seems to have been recorded with a typo, so our message "
        "was not sent. Did you mean {suggestion}? Could you confirm the correct address?",
    ),
    "rejected:no_such_domain": _G(
        "The e-mail domain does not exist",
        "The domain (the part after the @) does not exist or receives no mail; it looks like "
        "a typo for {suggestion}. Confirm the address with the customer and fix the record.",
        "Hello! The domain of the e-mail address we have on file does not exist or cannot "
        "receive mail. Did you mean {suggestion}? Could you confirm the correct address?",
    ),
    "rejected:null_mx": _G(
        "The domain receives no e-mail",
        "The domain declares that it accepts no mail (null MX); it looks like a typo for "
        "{suggestion}. Confirm the address with the customer and fix the record.",
        "Hello! The e-mail address we have on file belongs to a domain that receives no "
        "mail. Did you mean {suggestion}? Could you confirm the correct address?",
    ),
}

_TEXTS: dict[str, dict[str, Guidance]] = {"pt-BR": _PT, "en": _EN}
_SUGGESTED: dict[str, dict[str, Guidance]] = {"pt-BR": _PT_SUGGESTED, "en": _EN_SUGGESTED}


def _detail(status: Status, category: Category | None, reason: str | None) -> str:
    if status in (Status.REJECTED, Status.SUPPRESSED):
        return (reason or "").strip().lower()
    if status in (Status.BOUNCED, Status.SENT):
        return category.value if category is not None else ""
    if status in (Status.DEFERRED, Status.EXPIRED):
        return folded_category(category)
    return ""


def guidance(
    status: Status,
    category: Category | None = None,
    reason: str | None = None,
    lang: str = DEFAULT_LANG,
    suggestion: str | None = None,
) -> Guidance:
    """The plain-words guidance for a recipient's status.

    Args:
        status: the recipient's status.
        category: the category of its last outcome, if any (``bounced``, ``sent``,
            ``deferred``, ``expired``).
        reason: the intake reason for ``rejected`` (``invalid``, ``typo``,
            ``no_such_domain``, ``null_mx``, ``suppressed``, ``quota``, ...) or the
            suppression reason for ``suppressed``; unknown reasons get the generic text.
        lang: ``"pt-BR"`` (default) or ``"en"``; ``"en-US"``-style tags map to ``"en"``
            and anything else to ``"pt-BR"``.
        suggestion: the address a refusal suggested (``typo``, ``no_such_domain`` and
            ``null_mx`` of a near miss), named in the texts; ignored elsewhere.

    Returns:
        The guidance; never raises for any status, category and reason.
    """
    texts = _TEXTS[_lang(lang)]
    detail = _detail(status, category, reason)
    if detail:
        key = f"{status.value}:{detail}"
        suggested = _SUGGESTED[_lang(lang)].get(key) if suggestion else None
        if suggested is not None:
            suggestion = " ".join(str(suggestion).split())  # one line, whatever was stored
            return Guidance(
                suggested.title,
                suggested.what_to_do.format(suggestion=suggestion),
                suggested.customer_message.format(suggestion=suggestion),
            )
        found = texts.get(key)
        if found is not None:
            return found
    return texts[status.value]
