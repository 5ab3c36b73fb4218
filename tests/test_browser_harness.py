from tests.browser import chromium_page
def test_offline_page_blocks_network_requests(tmp_path):
    with chromium_page() as page:
        page.set_content("<html><body><h1>hi</h1><img src='http://example.com/x.png'></body></html>")
        page.screenshot(path=str(tmp_path/"a.png"))
        assert page.inner_text("h1") == "hi"
        assert page.blocked_requests
