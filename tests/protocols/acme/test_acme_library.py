"""certbot's ``acme`` library drives a full issuance, as any RFC 8555 client would."""

from __future__ import annotations

import datetime as dt

from acme import challenges, client, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy import jwa
from josepy.jwk import JWKEC

from tests.protocols.acme.conftest import AcmeHarness
from tests.protocols.acme.raw import csr_der


def test_acme_library_obtains_a_certificate(acme: AcmeHarness) -> None:
    key = JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(key, alg=jwa.ES256, user_agent="certfleet-tests")
    directory = client.ClientV2.get_directory(
        acme.directory["newAccount"].rsplit("/", 1)[0] + "/directory", net
    )
    acme_client = client.ClientV2(directory, net)
    account = acme_client.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    net.account = account
    name = "library.example.test"
    from cryptography import x509

    csr_pem = x509.load_der_x509_csr(csr_der([name])).public_bytes(serialization.Encoding.PEM)
    order = acme_client.new_order(csr_pem)
    for authz in order.authorizations:
        challb = next(c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01))
        response, validation = challb.response_and_validation(key)
        acme.http01.tokens[challb.chall.encode("token")] = validation
        acme_client.answer_challenge(challb, response)
    done = acme_client.poll_and_finalize(order, dt.datetime.now() + dt.timedelta(seconds=30))
    assert "BEGIN CERTIFICATE" in done.fullchain_pem
    renewal_time, _ = acme_client.renewal_time(done.fullchain_pem.encode())
    assert renewal_time is not None
