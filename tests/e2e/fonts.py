"""What fonts Chromium really drew a text with (for the tests of scripts and languages)."""
from __future__ import annotations


def fonts_of(page, selector: str) -> dict[str, list[str]]:
    """For each element matching ``selector``: its text → the fonts Chromium really drew it with (DevTools'
    CSS.getPlatformFontsForNode, which reports the font of every glyph run, fallbacks included)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    found = {}
    for node in cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": selector})["nodeIds"]:
        text = cdp.send("DOM.resolveNode", {"nodeId": node})["object"]["objectId"]
        content = cdp.send("Runtime.callFunctionOn", {"objectId": text, "functionDeclaration":
                                                      "function() { return this.textContent; }",
                                                      "returnByValue": True})["result"]["value"]
        # The fonts of the element's text node (its first child).
        child = cdp.send("DOM.describeNode", {"nodeId": node, "depth": 1})["node"]["children"][0]["backendNodeId"]
        child_id = cdp.send("DOM.pushNodesByBackendIdsToFrontend", {"backendNodeIds": [child]})["nodeIds"][0]
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": child_id})["fonts"]
        found[content] = tuple(sorted(f["familyName"] for f in fonts))
    cdp.detach()
    return found
